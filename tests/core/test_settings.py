import pytest

from llmtool.errors import InvalidRequestError
from llmtool.settings import load_settings


def test_sdk_variable_names_and_nested_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LLMTOOL_TIMEOUTS__FIRST_TOKEN", "12.5")
    monkeypatch.setenv("LLMTOOL_ENDPOINTS__OLLAMA__BASE_URL", "http://127.0.0.1:11434/v1")
    settings = load_settings()
    assert settings.openai_api_key.get_secret_value() == "sk-test"
    assert settings.anthropic_base_url == "http://127.0.0.1:9"
    assert settings.timeouts.first_token == 12.5
    assert settings.endpoints["ollama"].base_url == "http://127.0.0.1:11434/v1"


def test_config_file_is_read_and_environment_wins(tmp_path, monkeypatch):
    config = tmp_path / "llmtool.toml"
    config.write_text(
        'default_model = "demo:echo"\n'
        "[timeouts]\nidle = 7\n"
        '[endpoints.lmstudio]\nbase_url = "http://127.0.0.1:1234/v1"\nmodels = ["phi"]\napi_key_env = "LMS_KEY"\n'
    )
    monkeypatch.setenv("LLMTOOL_TIMEOUTS__IDLE", "9")
    monkeypatch.setenv("LMS_KEY", "from-env")
    settings = load_settings(config)
    assert settings.default_model == "demo:echo"
    assert settings.timeouts.idle == 9
    assert settings.endpoints["lmstudio"].key() == "from-env"


def test_default_config_file_in_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "llmtool.toml").write_text("[retry]\nmax_attempts = 2\n")
    assert load_settings().retry.max_attempts == 2


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"timeouts": {"idle": 0}}, "timeouts.idle"),
        ({"retry": {"max_attempts": 1000}}, "retry.max_attempts"),
        ({"endpoints": {"openai": {"base_url": "http://x"}}}, "must be letters"),
        ({"endpoints": {"x": {"base_url": "ftp://x"}}}, "http://"),
        ({"tiemouts": {}}, "tiemouts"),
    ],
)
def test_absurd_settings_are_refused_clearly(overrides, words):
    with pytest.raises(InvalidRequestError) as caught:
        load_settings(**overrides)
    assert words in caught.value.message


def test_missing_or_broken_config_file(tmp_path):
    with pytest.raises(InvalidRequestError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[timeouts\n")
    with pytest.raises(InvalidRequestError, match=r"broken\.toml"):
        load_settings(broken)


def test_pasted_keys_are_trimmed_and_an_empty_key_is_no_key():
    assert load_settings(OPENAI_API_KEY="sk-abc\n").openai_api_key.get_secret_value() == "sk-abc"
    assert load_settings(OPENAI_API_KEY="  ").openai_api_key is None


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"OPENAI_API_KEY": "sk-é"}, "non-ASCII"),
        ({"ANTHROPIC_API_KEY": "sk ant"}, "spaces"),
        ({"OPENAI_BASE_URL": "localhost:1/v1"}, "http://host:port/path"),
        ({"ANTHROPIC_BASE_URL": "http://h:99999"}, "port 99999"),
        ({"endpoints": {"x": {"base_url": "http://[::1/v1"}}}, "not a valid URL"),
    ],
)
def test_keys_and_base_urls_are_checked_once_with_a_clear_message(overrides, words):
    with pytest.raises(InvalidRequestError) as caught:
        load_settings(**overrides)
    assert words in caught.value.message
