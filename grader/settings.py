"""Grader settings, read once from the environment (prefix ``AUTOGRADER_``) into one typed object.

The settings classes are pydantic-settings models (``SettingsBase`` below, shared with server/settings.py):

- every field is read from ``AUTOGRADER_<FIELD NAME>`` (or its alias: ``AUTOGRADER_SANDBOX_PYTHON``,
  ``AUTOGRADER_LIMITS``); an empty variable counts as unset;
- a bad value is a ``SettingsError`` naming the variable (``AUTOGRADER_MAX_ATTEMPTS='many': Input should be a
  valid integer ...``), never a silent default;
- a secret (the class's ``SECRETS``) may instead come from a file: ``<NAME>_FILE=/run/secrets/x`` (the Docker
  secrets convention); an unreadable or empty file, or both variables set, is a ``SettingsError``;
- ``settings()`` reads them once per process (nothing is read at import time); ``from_env(mapping)`` reads a
  given mapping instead of ``os.environ`` (tests), and ``with_(**changes)`` is a validated copy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

from pydantic import AliasGenerator, BeforeValidator, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "AUTOGRADER_"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """A setting's value (or its secret file) is unusable; the message names the environment variable."""


def env_flag(raw: str | None, *, default: bool) -> bool:
    """An on/off setting: 1/true/yes/on or 0/false/no/off (any case); unset or anything else is `default`."""
    value = (raw or "").strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    return default


def _flag(value: Any) -> Any:
    """The settings' on/off parser: the words of env_flag; anything else is an error (not a silent default)."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError("expected 1/true/yes/on or 0/false/no/off")
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]
"""A bool read from the environment as env_flag reads it (but a word it does not know is an error)."""


def _parse_limits(text: str) -> dict[str, float]:
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            if not (sep and key.strip()):
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"expected NAME=NUMBER pairs separated by commas (e.g. op_s=5,wall_s=300), "
                             f"not {item!r}") from None
    return out


def _limits(value: Any) -> Any:
    return _parse_limits(value) if isinstance(value, str) else value


def _path_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(Path(p) for p in value.split(os.pathsep) if p.strip())
    return value


# ---------------------------------------------------------------- the shared machinery

_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("autograder_settings_environ", default=None)
"""The mapping the settings being built read (None: os.environ); set by SettingsBase.from_env."""


def _environ() -> Mapping[str, str]:
    env = _ENVIRON.get()
    return os.environ if env is None else env


class _EnvView(Mapping[str, str]):
    """`env` as pydantic-settings' env source sees it: empty values are unset. Lookups go to `env` one name at
    a time (tests/test_docker.py records which names the settings read)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def get(self, key: str, default: Any = None) -> Any:
        value = self.env.get(key)
        return default if value is None or value == "" else value

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return str(value)

    def __iter__(self) -> Iterator[str]:
        return (k for k, v in self.env.items() if v != "")

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _EnvSource(EnvSettingsSource):
    """The environment source, reading the mapping of the current from_env (os.environ by default)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return _EnvView(_environ())


class _SecretFileSource(PydanticBaseSettingsSource):
    """``<NAME>_FILE``: a secret's value read from the named file (surrounding whitespace stripped)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # unused (__call__)
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        cls: type[SettingsBase] = self.settings_cls  # type: ignore[assignment]
        env = _environ()
        out: dict[str, Any] = {}
        for name in cls.SECRETS:
            var = cls.env_name(name)
            path = env.get(f"{var}_FILE")
            if not path:
                continue
            if env.get(var):
                raise SettingsError(f"{var} and {var}_FILE are both set: set only one of them")
            try:
                value = Path(path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise SettingsError(f"{var}_FILE={path!r}: cannot read the secret file ({reason})") from None
            if not value:
                raise SettingsError(f"{var}_FILE={path!r}: the secret file is empty")
            out[name] = value
        return out


class SettingsBase(BaseSettings):
    """Read from ``AUTOGRADER_*`` (names exact, case-sensitive), secrets also from ``*_FILE``; frozen."""

    model_config = SettingsConfigDict(
        case_sensitive=True, frozen=True, populate_by_name=True, extra="forbid", validate_default=True,
        # each field's variable is AUTOGRADER_<FIELD> unless the field names another (validation_alias)
        alias_generator=AliasGenerator(validation_alias=lambda field: f"{ENV_PREFIX}{field.upper()}"),
    )
    SECRETS: ClassVar[frozenset[str]] = frozenset()
    """Fields whose value may come from ``<NAME>_FILE`` and is never shown in an error message or repr."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise self.settings_error(exc) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit values, then the environment, then ``*_FILE`` secrets (no .env files)."""
        return init_settings, _EnvSource(settings_cls), _SecretFileSource(settings_cls)

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable a field is read from."""
        alias = cls.model_fields[field].validation_alias
        return alias if isinstance(alias, str) else f"{ENV_PREFIX}{field.upper()}"

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Every variable these settings read -> its field (secrets: also ``<NAME>_FILE``)."""
        out = {cls.env_name(f): f for f in cls.model_fields}
        out.update({f"{cls.env_name(f)}_FILE": f for f in cls.SECRETS})
        return out

    @classmethod
    def settings_error(cls, exc: ValidationError) -> SettingsError:
        """`exc` in words that name the variables (a secret's value is never shown)."""
        by_name = {cls.env_name(f): f for f in cls.model_fields} | {f: f for f in cls.model_fields}
        lines = []
        for err in exc.errors(include_url=False):
            loc = str(err["loc"][0]) if err["loc"] else ""
            field = by_name.get(loc)
            if field is None:
                lines.append(f"{loc or cls.__name__}: {err['msg']}")
                continue
            shown = "" if field in cls.SECRETS or "input" not in err else f"={err['input']!r}"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{cls.env_name(field)}{shown}: {msg}")
        return SettingsError(f"invalid setting{'s' if len(lines) > 1 else ''}: " + "; ".join(lines))

    @classmethod
    def by_field_name(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """`data` (keyed by field names or variable names, as the sources give them) keyed by field names."""
        names = {cls.env_name(f): f for f in cls.model_fields}
        return {names.get(k, k): v for k, v in data.items()}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **values: Any) -> Self:
        """The settings read from `env` (default: os.environ); `values` take precedence over it."""
        with reading(env):
            return cls(**values)

    def with_(self, **changes: Any) -> Self:
        """A copy with `changes` (validated; the environment is not read again)."""
        with reading({}):
            return type(self)(**{**dict(self), **changes})


@contextmanager
def reading(env: Mapping[str, str] | None) -> Iterator[None]:
    """Settings built inside read `env` instead of os.environ (None: os.environ)."""
    token = _ENVIRON.set(env)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


# ---------------------------------------------------------------- the grader's settings


class GraderSettings(SettingsBase):
    hidden_data: Path = PROJECT_ROOT / "hidden_data"
    """Instructor-only data (labels!). Never bound into the sandbox."""
    shared_data: Path = PROJECT_ROOT.parent / "shared" / "data"
    """Where `autograder data prepare` (and the training scripts) find the raw sources (../shared/data)."""
    work_dir: Path = Path("/tmp/nn-autograder")
    """Scratch space for unpacked submissions and sandbox job folders (host side)."""
    cgroup_root: Path = Path("/sys/fs/cgroup")
    """Root of the cgroup hierarchies (v1: <root>/{memory,pids,cpu}; v2: <root>/unified or <root>)."""
    cgroup_name: str = "nn-autograder"
    """Name of the parent cgroup this grader creates per-run groups under."""
    python: Path = Field(default_factory=lambda: Path(sys.executable),
                         validation_alias="AUTOGRADER_SANDBOX_PYTHON")
    """Interpreter the sandbox runs (a venv's python with numpy and torch); AUTOGRADER_SANDBOX_PYTHON."""
    bwrap: str = "bwrap"
    limit_overrides: Annotated[dict[str, float], NoDecode, BeforeValidator(_limits)] = Field(
        default_factory=dict, validation_alias="AUTOGRADER_LIMITS")
    """Override any assignment limit for every grading (e.g. AUTOGRADER_LIMITS="op_s=5,wall_s=300")."""
    assignment_dirs: Annotated[tuple[Path, ...], NoDecode, BeforeValidator(_path_list)] = ()
    """Further folders of assignments besides the built-in ones (AUTOGRADER_ASSIGNMENT_DIRS, separated by
    os.pathsep): each subfolder holding an assignment.toml is an assignment."""
    require_sandbox: Flag = True
    """`autograder worker` and `autograder serve` refuse to start unless bubblewrap runs and the cgroup
    limits can be set (AUTOGRADER_REQUIRE_SANDBOX, on by default; `false` only to let a broken host start
    and fail each grading instead, as a test of the retry path does)."""


@cache
def settings() -> GraderSettings:
    """The process-wide settings, read from the environment on first use."""
    return GraderSettings()


__all__ = ["PROJECT_ROOT", "Flag", "GraderSettings", "SettingsBase", "SettingsError", "env_flag",
           "reading", "settings"]
