"""Settings: the one source of truth for keys, endpoints, limits and defaults.

Read, highest priority first, from keyword arguments, the environment, then a TOML config file:
`--config PATH`, else `$LLMTOOL_CONFIG`, else `./llmtool.toml` when it exists.

Environment names: provider keys and base URLs follow the SDKs (`OPENAI_API_KEY`,
`OPENAI_BASE_URL`, `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`); everything else is `LLMTOOL_…` with
`__` between nested names, e.g. `LLMTOOL_TIMEOUTS__FIRST_TOKEN=20`,
`LLMTOOL_ENDPOINTS__OLLAMA__BASE_URL=http://localhost:11434/v1`.
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import Any

import httpx2
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from llmtool.errors import InvalidRequestError

DEFAULT_CONFIG_FILE = "llmtool.toml"
_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("config", default=None)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # NaN passes no range check: refused


def check_base_url(value: str | None) -> str | None:
    """An http(s) URL with a host and a valid port, without a trailing slash; errors say why."""
    if value is None or not value.strip():
        return None
    value = value.strip().rstrip("/")
    try:
        url = httpx2.URL(value)
    except httpx2.InvalidURL as exc:
        raise ValueError(f"base URL is not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("base URL must look like http://host:port/path or https://host/path")
    if url.port is not None and not 0 < url.port < 65536:
        raise ValueError(f"base URL port {url.port} is not between 1 and 65535")
    if url.userinfo:
        # The SDKs would send it as HTTP Basic beside the key: credentials nobody asked to send.
        raise ValueError(
            "base URL has a user name or password in it (http://user:…@host): llmtool does not send "
            "credentials from a URL; remove them and set the key (api_key, api_key_env or the "
            "provider's key variable)"
        )
    return value


def check_redis_url(value: str | None) -> str | None:
    """redis://host[:port][/db], rediss://… (TLS) or unix:///path; errors say why, never the password."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    scheme, _, rest = value.partition("://")
    if scheme not in ("redis", "rediss", "unix") or not rest:
        raise ValueError("must look like redis://host:6379/0, rediss://host:6380/0 or unix:///path/redis.sock")
    try:
        url = httpx2.URL(value)
        port = url.port
    except (httpx2.InvalidURL, ValueError):
        raise ValueError("not a valid URL (check the host, the port and the characters "
                         "of the password: %-encode '@', ':' and '/')") from None
    if scheme == "unix":
        if not url.path or url.path == "/":
            raise ValueError("unix:///path needs the path of Redis's socket")
        return value
    if not url.host:
        raise ValueError("no host: redis://host:6379/0")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} is not between 1 and 65535")
    database = url.path.strip("/")
    if database and not database.isdigit():
        raise ValueError(f"the database must be a number (redis://host:6379/0), not {database[:20]!r}")
    return value


def check_key(value: SecretStr | None) -> SecretStr | None:
    """Keys pasted with a newline or spaces are trimmed; an empty key is no key."""
    if value is None:
        return None
    key = value.get_secret_value().strip()
    if not key:
        return None
    if not key.isascii() or any(c.isspace() for c in key):
        raise ValueError("the API key contains spaces or non-ASCII characters: check what was pasted")
    return SecretStr(key)


class Timeouts(_Strict):
    """Each limit has its own error. Seconds."""

    connect: float = Field(10.0, gt=0, le=600)
    first_token: float = Field(60.0, gt=0, le=3600, description="From attempt start to first text.")
    idle: float = Field(30.0, gt=0, le=3600, description="Longest gap between two deltas.")
    reasoning_idle: float = Field(
        300.0, gt=0, le=86400, description="Longest gap while the model reasons, before its first text."
    )
    total: float = Field(300.0, gt=0, le=86400, description="Whole run, retries included.")


class TimeoutOverrides(_Strict):
    """Per-request overrides of `Timeouts`; unset fields keep the settings' values."""

    connect: float | None = Field(None, gt=0, le=600)
    first_token: float | None = Field(None, gt=0, le=3600)
    idle: float | None = Field(None, gt=0, le=3600)
    reasoning_idle: float | None = Field(None, gt=0, le=86400)
    total: float | None = Field(None, gt=0, le=86400)

    def apply(self, base: Timeouts) -> Timeouts:
        return base.model_copy(update=self.model_dump(exclude_none=True))


class RetryPolicy(_Strict):
    """Our retries (the SDKs' own are off). Only before the first text delta."""

    max_attempts: int = Field(4, ge=1, le=10)
    initial_delay: float = Field(0.5, ge=0, le=60)
    max_delay: float = Field(8.0, ge=0, le=300)
    jitter: float = Field(0.25, ge=0, le=10, description="Up to this many seconds added at random.")
    max_retry_time: float = Field(60.0, ge=0, le=3600, description="All waits of a run together.")
    max_retry_after: float = Field(
        30.0, ge=0, le=3600,
        description="Longest retry-after we honour; a provider asking for more fails the run.",
    )


class DemoSettings(_Strict):
    """Pacing of the offline demo provider."""

    first_token_delay: float = Field(0.35, ge=0, le=60)
    tokens_per_second: float = Field(60.0, gt=0, le=100_000)


class EndpointConfig(_Strict):
    """An OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio) spoken to via Chat Completions."""

    base_url: str
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(None, description="Read the key from this variable instead.")
    models: list[str] = Field(default_factory=list)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        checked = check_base_url(value)
        if checked is None:
            raise ValueError("base_url is empty")
        return checked

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        return check_key(value)

    def key(self) -> str:
        if self.api_key_env and os.environ.get(self.api_key_env):
            return os.environ[self.api_key_env]
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        return "not-needed"  # local servers ignore the key, but the SDK insists on one


class PriceOverride(_Strict):
    """Dollars per million tokens, for a model the built-in catalogue lacks or prices wrongly."""

    input: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)
    cache_write: float | None = Field(None, ge=0, description="Tokens written to the prompt cache; default: input.")
    output: float = Field(ge=0)


class UISettings(_Strict):
    """The Gradio app and the HTTP API."""

    host: str = "127.0.0.1"
    port: int = Field(7860, ge=0, le=65535)
    update_interval: float = Field(
        0.05, ge=0, le=5, description="Coalesce deltas: at most one page update per this many s."
    )
    updates_per_second: float = Field(
        400, gt=0, le=1_000_000,
        description="Page updates per second of all streams together; past it each stream's updates come "
        "further apart (its share, up to 1 s), so many users slow the steps of every answer, not the server.",
    )
    concurrency: int = Field(64, ge=1, le=10_000, description="Runs streaming at once per event.")
    max_threads: int = Field(64, ge=1, le=10_000)
    queue_size: int = Field(256, ge=1, le=100_000, description="Waiting requests before 'busy'.")
    users_file: Path | None = None
    session_idle_minutes: float = Field(
        720, gt=0, le=525_600, description="A login unused this long (default 12 h) asks for the password again."
    )
    session_max_days: float = Field(
        7, gt=0, le=365, description="A login ends this long after it began (default 7 days), however much it is used."
    )
    files_keep_minutes: float = Field(
        60, gt=0, le=525_600,
        description="Uploaded datasets and exported files are deleted this long after they were written (default 1 h).",
    )


class StoreSettings(_Strict):
    """The run store's writer: how often it writes, beats and forgets. Seconds unless named."""

    flush_interval: float = Field(
        1.0, gt=0, le=60, description="Write streamed text at least this often (a crash loses at most this)."
    )
    heartbeat_interval: float = Field(5.0, gt=0, le=300)
    stale_after: float = Field(
        30.0, gt=0, le=3600, description="A process silent this long is gone: its running runs are interrupted."
    )
    retention_days: float | None = Field(
        None, gt=0, description="Delete runs older than this many days; unset keeps them forever."
    )


class RunSettings(_Strict):
    stop_unwatched_after: float | None = Field(
        None, gt=0, le=86400,
        description="Stop a run nobody has watched for this many seconds (saves credit); unset: runs finish.",
    )
    # With logins only (a login's runs; without logins nothing is limited): see llmtool/service/scheduler.py.
    max_concurrent: int = Field(
        64, ge=1, le=100_000,
        description="Runs talking to providers at once in this process, all users together; more wait, fairly.",
    )
    user_headroom: int = Field(
        8, ge=0, le=100_000,
        description="Slots one user's runs always leave to others: a user runs at most max_concurrent minus "
        "this at once (fewer if the role says), so another user's run starts at once.",
    )
    max_waiting_per_user: int = Field(
        64, ge=0, le=100_000, description="Runs one user may have waiting for a slot; more are refused (429).",
    )
    drain_seconds: float = Field(
        30.0, ge=0, le=86400,
        description="On SIGTERM the server takes no new run and lets running ones finish this long; then the "
        "rest end `interrupted` (their text kept) and the process exits.",
    )


BUILTIN_ROLES = ("admin", "member", "partner")


class RolePolicy(_Strict):
    """What one role may do and spend: data in the config file (`[roles.partner]`), never code branches.

    Glob patterns (`fnmatch`, case-sensitive) name the models (`openai:gpt-4.1*`, `demo:*`) and templates
    a role may use; an empty list allows none. Limits left unset do not apply."""

    models: list[str] = Field(default_factory=list, description="Model ids this role may use, as globs.")
    templates: list[str] = Field(default_factory=list, description="Template names this role may use, as globs.")
    uploads: bool = Field(False, description="May upload datasets (Evaluate).")
    free_prompts: bool = Field(True, description="May send prompts of their own, not only through templates.")
    see_all_runs: bool = Field(False, description="Sees and may stop every user's runs (admins).")
    manage_users: bool = Field(False, description="Sees the usage of every user (admin view).")
    max_concurrent_runs: int | None = Field(None, ge=1, le=10_000, description="Runs streaming at once per user.")
    runs_per_minute: int | None = Field(None, ge=1, le=100_000, description="Runs started per user per minute.")
    max_evaluation_runs: int | None = Field(
        None, ge=1, le=10_000_000, description="Largest evaluation: cases × models × repeats, plus grading runs."
    )
    daily_budget: float | None = Field(None, ge=0, description="Dollars per user per UTC day.")
    monthly_budget: float | None = Field(None, ge=0, description="Dollars per user per UTC calendar month.")

    @property
    def budgeted(self) -> bool:
        return self.daily_budget is not None or self.monthly_budget is not None


def default_roles() -> dict[str, RolePolicy]:
    """The built-in roles; `[roles.NAME]` in the config file replaces one or adds another."""
    return {
        "admin": RolePolicy(models=["*"], templates=["*"], uploads=True, see_all_runs=True, manage_users=True),
        "member": RolePolicy(models=["*"], templates=["*"], uploads=True),
        "partner": RolePolicy(free_prompts=True, max_concurrent_runs=2, runs_per_minute=10,
                              max_evaluation_runs=200, daily_budget=5.0, monthly_budget=50.0),
    }


class LoginThrottle(_Strict):
    """Slowing down and then refusing password guesses, per user name and per client address."""

    free_failures: int = Field(3, ge=1, le=1000, description="Failures answered at once before slowing down.")
    delay: float = Field(1.0, ge=0, le=60, description="Seconds added per failure past the free ones.")
    lock_after: int = Field(10, ge=1, le=100_000, description="Failures in `window` that lock the user or address.")
    lock_minutes: float = Field(15, gt=0, le=1440, description="How long a lock lasts.")
    window_minutes: float = Field(15, gt=0, le=1440, description="Failures older than this are forgotten.")


class AccountSettings(_Strict):
    """Logins: passwords, throttling, tokens and the reverse-proxy header."""

    min_password_length: int = Field(12, ge=1, le=1024)
    throttle: LoginThrottle = Field(default_factory=LoginThrottle)
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Addresses or networks (CIDR) whose `proxy_user_header` is believed."
    )
    proxy_user_header: str | None = Field(
        None, description="A header carrying the login name set by a trusted reverse proxy (e.g. X-Forwarded-User)."
    )
    allowed_origins: list[str] = Field(
        default_factory=list, description="Other origins allowed to call the API with credentials (CORS)."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network (CIDR, e.g. 10.0.0.0/8)") from None
        return [entry.strip() for entry in value]

    @field_validator("proxy_user_header")
    @classmethod
    def _header(cls, value: str | None, info: Any) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.strip().replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"{value!r} is not a header name (letters, digits and -)")
        if not info.data.get("trusted_proxies"):
            raise ValueError("a proxy user header is only believed from accounts.trusted_proxies: list your "
                             "reverse proxy's address there")
        return value.strip()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LLMTOOL_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    anthropic_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("ANTHROPIC_API_KEY", "anthropic_api_key")
    )
    anthropic_base_url: str | None = Field(
        None, validation_alias=AliasChoices("ANTHROPIC_BASE_URL", "anthropic_base_url")
    )
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    prices: dict[str, PriceOverride] = Field(
        default_factory=dict, description="'PROVIDER:MODEL' → price; also adds the model."
    )
    default_model: str | None = None
    timeouts: Timeouts = Field(default_factory=Timeouts)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    ui: UISettings = Field(default_factory=UISettings)
    validator_modules: list[str] = Field(
        default_factory=list,
        description="Modules whose functions `python` validation rules may call (they run server code).",
    )
    cache_prompts: bool = Field(
        True, description="Ask Anthropic to cache long system prompts and long user content "
        "(a template's cache_prompt overrides it).",
    )
    model_list_ttl: float = Field(
        600.0, ge=0, le=86400, description="Seconds a provider's live model list is reused; 0: ask every time.",
    )
    prompts_dir: Path = Path("prompts")
    database_url: str | None = Field(
        None,
        description="Where runs are kept: sqlite+aiosqlite:///path or postgresql+asyncpg://…; "
        "unset: llmtool.db in the user's data folder.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis shared by the replicas of a deployment (redis://[:password@]host:port/db, "
        "rediss://… or unix:///path): live events and Stop reach every replica; unset: one process.",
    )
    store: StoreSettings = Field(default_factory=StoreSettings)
    runs: RunSettings = Field(default_factory=RunSettings)
    accounts: AccountSettings = Field(default_factory=AccountSettings)
    roles: dict[str, RolePolicy] = Field(
        default_factory=default_roles, description="Per-role permissions and limits; merged over the built-in roles."
    )

    @field_validator("openai_base_url", "anthropic_base_url")
    @classmethod
    def _base_urls(cls, value: str | None) -> str | None:
        return check_base_url(value)

    @field_validator("openai_api_key", "anthropic_api_key")
    @classmethod
    def _keys(cls, value: SecretStr | None) -> SecretStr | None:
        return check_key(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return check_redis_url(value)

    @field_validator("endpoints")
    @classmethod
    def _endpoint_names(cls, value: dict[str, EndpointConfig]) -> dict[str, EndpointConfig]:
        reserved = {"openai", "anthropic", "demo"}
        for name in value:
            if name in reserved or not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(
                    f"endpoint name {name!r} must be letters, digits, - or _ and not one of "
                    f"{sorted(reserved)}"
                )
        return value

    @field_validator("roles", mode="before")
    @classmethod
    def _roles(cls, value: Any) -> Any:
        """A built-in role named in the config keeps the built-in values of the fields it does not set."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {name: role.model_dump() for name, role in default_roles().items()}
        for name, given in value.items():
            if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"role name {name!r} must be letters, digits, - or _")
            if isinstance(given, RolePolicy):
                given = given.model_dump(exclude_unset=True)
            merged[name] = merged.get(name, {}) | given if isinstance(given, dict) else given
        return merged

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def config_path(explicit: str | Path | None = None) -> Path | None:
    """The config file in force, or None. An explicitly named file must exist."""
    named = explicit or os.environ.get("LLMTOOL_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise InvalidRequestError(f"config file not found: {path}")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from overrides, environment and config file, or a clear InvalidRequestError."""
    path = config_path(config)
    token = _config_file.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        where = f" (config file {path})" if path else ""
        raise InvalidRequestError(f"invalid settings{where}: {describe_validation_error(exc)}") from None
    except ValueError as exc:  # e.g. a TOML syntax error
        raise InvalidRequestError(f"cannot read config file {path}: {exc}") from None
    finally:
        _config_file.reset(token)


def describe_validation_error(exc: ValidationError) -> str:
    """pydantic's errors as one readable line: 'timeouts.idle: must be > 0; model: required'."""
    parts = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
