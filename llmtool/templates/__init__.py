"""Prompt templates: Markdown files with YAML front matter in `settings.prompts_dir` (`prompts/`).

    registry = TemplateRegistry(settings.prompts_dir)     # rescans on every access: live editing
    template = registry.get("summarise")                  # or TemplateError naming file and line
    run = service.start(template.to_run_request({"text": "…"}, model="demo:assistant"))

The file format is described in `llmtool.templates.loader`; the metadata model in
`llmtool.templates.model`; rendering (Jinja's sandbox, strict undefined) in
`llmtool.templates.render`; `llmtool prompts check` in `llmtool.templates.lint` (imported on its own: it
also checks datasets, and `llmtool.evaluation` depends on this package).
"""

from llmtool.templates.errors import TemplateError, UnknownTemplateError
from llmtool.templates.loader import content_hash, load_template
from llmtool.templates.model import TemplateMeta, VariableSpec
from llmtool.templates.registry import TemplateRegistry
from llmtool.templates.template import RenderedPrompt, Template

__all__ = [
    "RenderedPrompt",
    "Template",
    "TemplateError",
    "TemplateMeta",
    "TemplateRegistry",
    "UnknownTemplateError",
    "VariableSpec",
    "content_hash",
    "load_template",
]
