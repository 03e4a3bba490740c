import pytest
from pydantic import ValidationError

from llmtool.validation import ValidationRules, check_python_rule


def passes_if_short(text: str):
    return True if len(text) < 10 else f"{len(text)} characters is too chatty"


@pytest.mark.parametrize(
    ("rules", "text", "problems"),
    [
        ({"min_length": 5}, "abc", ["too short: 3 characters, at least 5 required"]),
        ({"max_length": 3}, "abcd", ["too long: 4 characters, at most 3 allowed"]),
        ({"required_patterns": [r"^Answer:"]}, "x\nAnswer: 4", []),
        ({"required_patterns": [r"\d+"]}, "none", ["required pattern not found: \\d+"]),
        ({"forbidden_patterns": ["TODO"]}, "a TODO b", ["forbidden pattern found: TODO (matched 'TODO')"]),
        ({"forbidden_words": ["delve"]}, "We Delve.", ["forbidden word used: delve"]),
        ({"forbidden_words": ["delve"]}, "delved", []),
        ({"json": True}, '{"a": 1}', []),
        ({"json": True}, '```json\n{"a": 1}\n```', []),
        ({"json": True}, "{a: 1}", ["not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"]),
        (
            {"json_schema": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}},
            '{"n": "x"}',
            ["JSON does not match the schema at n: 'x' is not of type 'integer'"],
        ),
        ({"python": "tests.core.test_validation:passes_if_short"}, "short", []),
        ({"python": "tests.core.test_validation:passes_if_short"}, "much too long", ["13 characters is too chatty"]),
    ],
)
def test_rules(rules, text, problems):
    assert ValidationRules.model_validate(rules).check(text) == problems


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        ({"required_patterns": ["("]}, "not a valid regular expression"),
        ({"json_schema": {"type": 12}}, "not a valid JSON Schema"),
        ({"min_length": 10, "max_length": 2}, "more than max_length"),
        ({"python": "justaname"}, "package.module:function"),
        ({"python": "os:system; rm"}, "package.module:function"),
        ({"mode": "sometimes"}, "mode"),
        ({"maxlength": 3}, "maxlength"),
    ],
)
def test_bad_rules_are_refused_when_declared(rules, words):
    with pytest.raises(ValidationError) as caught:
        ValidationRules.model_validate(rules)
    assert words in str(caught.value)


def test_declaring_a_python_rule_imports_nothing():
    ValidationRules(python="no.such.module:fn")  # checked when a run starts, against the allow-list


@pytest.mark.parametrize(
    ("path", "allowed", "words"),
    [
        ("os:system", [], "is not allowed"),
        ("os:system", ["tests"], "is not allowed"),
        ("testsuite.x:f", ["tests"], "is not allowed"),  # a prefix of a name is not its package
        ("tests.core.nope:f", ["tests"], "cannot be loaded"),
    ],
)
def test_python_rules_run_only_from_allowed_modules(path, allowed, words):
    with pytest.raises(ValueError, match=words):
        check_python_rule(path, allowed)
    check_python_rule("tests.core.test_validation:passes_if_short", ["tests"])


def test_json_schema_formats_are_checked():
    rules = ValidationRules(json_schema={"type": "object", "properties": {"d": {"type": "string", "format": "date"}}})
    assert rules.check('{"d": "2026-01-31"}') == []
    assert rules.check('{"d": "31 January 2026"}') == [
        "JSON does not match the schema at d: '31 January 2026' is not a 'date'"
    ]


def test_rule_count_and_no_rules():
    assert ValidationRules().rule_count == 0
    assert ValidationRules(forbidden_words=["a", "b"], json=True).rule_count == 3


def returns_a_number(text: str):
    return 3


def test_a_validator_returning_the_wrong_type_is_a_problem_not_a_crash():
    problems = ValidationRules(python="tests.core.test_validation:returns_a_number").check("x")
    assert problems == [
        "validator tests.core.test_validation:returns_a_number returned int; expected True, False, "
        "None, a problem string or a list of them"
    ]


def test_a_schema_that_cannot_be_applied_is_a_problem_not_a_crash():
    rules = ValidationRules(json_schema={"$ref": "#/definitions/missing"})
    [problem] = rules.check("{}")
    assert problem.startswith("the JSON schema could not be applied")


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        (r"^Answer: \d+$", "intro\nAnswer: 42\nbye", True),  # multiline, as with re.MULTILINE
        (r"^\w+$", "réponse", True),  # \w: letters of any script, as in Python
        (r"^\d+$", "١٢٣", True),  # \d: any script's digits
        (r"^\s+$", "\u00a0\u2003", True),  # \s: Unicode white space
        (r"[\w-]+@x", "josé-m@x", True),  # \w inside a class
        (r"end\Z", "the end", True),  # \Z: the end of the text
        (r"end\Z", "the end\n", False),
        (r"^a{,2}$", "aa", True),  # {,n}: up to n
        (r"(?i)HELLO", "hello", True),
        (r"\u00e9", "é", True),
        (r"\N{EM DASH}", "a — b", True),
        (r"x(?#a comment)y", "xy", True),
        (r"(a+)+$", "a" * 30 + "!", False),  # RE2: linear; Python's re: minutes
        (r"b", "a\ud800b", True),  # a lone surrogate does not break the search
    ],
)
def test_patterns_keep_pythons_meaning_on_re2(pattern, text, found):
    rules = ValidationRules(required_patterns=[pattern])
    assert (rules.check(text) == []) is found


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"(\w)\1", "backreferences (\\1, (?P=name)) are not supported"),
        (r"x(?!y)", "lookahead and lookbehind assertions"),
        (r"a*+", "atomic groups and possessive quantifiers"),
        (r"a{5000}", "a repetition count above 1000"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_when_declared(pattern, words):
    with pytest.raises(ValidationError) as caught:
        ValidationRules(forbidden_patterns=[pattern])
    message = str(caught.value)
    assert f"pattern {pattern!r} cannot be used: {words}" in message
    assert "patterns run on RE2" in message


def test_json_schema_patterns_run_on_re2_with_ecma_meaning():
    rules = ValidationRules(json_schema={
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": r"^\d{3}$"}},
        "patternProperties": {"^x-": {"type": "integer"}},
        "additionalProperties": False,
    })
    assert rules.check('{"code": "123", "x-a": 1}') == []
    assert rules.check('{"code": "١٢٣"}') == ["JSON does not match the schema at code: '١٢٣' does not match '^\\\\d{3}$'"]
    assert rules.check('{"x-a": "no"}') == ["JSON does not match the schema at x-a: 'no' is not of type 'integer'"]
    assert rules.check('{"other": 1}') == [
        "JSON does not match the schema at the top: 'other' does not match any of the regexes: '^x-'"
    ]


def test_json_inside_a_fence_and_deeply_nested_json():
    rules = ValidationRules(json=True)
    assert rules.check('```json\n\n{"a": 1}\n\n```\n') == []
    assert rules.check("[" * 50_000 + "]" * 50_000) == ["not valid JSON: nested too deeply at line 1 column 1"]


def test_stages_name_each_check():
    rules = ValidationRules(max_length=5, required_patterns=["a"], forbidden_words=["b"], json=True,
                            python="tests.core.test_validation:passes_if_short")
    assert [what for what, _ in rules.stages("x")] == [
        "the length", "the required pattern 'a'", "the forbidden words", "the JSON answer",
        "the python rule tests.core.test_validation:passes_if_short",
    ]
