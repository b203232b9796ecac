"""Reading what the user writes: YAML files (one-line errors naming the file, line and key), the
path rule, and tracking URIs.

Unknown keys are rejected and every error names the file and the key path, e.g.
``trial.yaml: intermediate.learning_rat: unknown key``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
    ValidationInfo,
)

from xscale.errors import XScaleError

# Path rule. Every path a sweep file, a trial file or a flag names (output_dir, data roots,
# model_path, a DeepSpeed recipe given as a path, the sqlite file of tracking_uri) is made
# absolute once, when the file is loaded, against the directory the command runs in (as shell
# paths are): `xscale sweep sweeps/smoke.yaml` run from the clone writes `./runs/smoke`. Trial
# processes never see a relative path, so Ray Tune's per-trial working directories do not matter.
DATA_ROOT_NAMES = ("hub", "fixtures")


def absolute(value: str | Path, base: str | Path | None = None) -> str:
    """`value` as an absolute path (`~` expanded), relative ones taken against `base` (default:
    the current directory)."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(base or Path.cwd()) / path
    return str(Path(os.path.normpath(path)))


# Folders no run may write into: kernel file systems (writes there fail or change the system,
# and root passes os.access on them), the system's own trees, and the roots a typo names
# (`--output-dir /`, `/tmp`, `~`), where stages and an MLflow store would mix with other files.
PSEUDO_FS = ("/proc", "/sys", "/dev")
SYSTEM_TREES = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot", "/run")
SHARED_ROOTS = ("/", "/tmp", "/var", "/var/tmp", "/home", "/opt", "/srv", "/mnt", "/media")


def _system_folder(path: Path) -> str | None:
    """Why `path` (absolute) may not be written by xscale, or None."""
    real = Path(os.path.realpath(path))
    for p in dict.fromkeys([path, real]):
        for root in PSEUDO_FS + SYSTEM_TREES:
            if p == Path(root) or Path(root) in p.parents:
                kind = "a kernel file system" if root in PSEUDO_FS else "the system's own files"
                return f"{p} is in {root}, {kind}"
        if str(p) in SHARED_ROOTS or p == Path.home():
            return f"{p} is a shared top-level folder (a sweep writes stages/ and mlflow.db there)"
    return None


def existing_ancestor(path: Path) -> Path:
    """`path` itself, or its nearest parent that exists (where a folder to be made would go)."""
    while not path.exists():
        path = path.parent
    return path


def check_output_dir(path: str | Path, what: str) -> Path:
    """Refuse an output folder that is a file, lies under a file, is a system folder, or cannot
    be written, before anything is written (`what` names the key or flag, e.g.
    `sweeps/x.yaml: output_dir`)."""
    path = Path(absolute(path))
    why = _system_folder(path)
    if why:
        raise XScaleError(f"{what}: {why}; give a folder of its own (e.g. ./runs/<name>)")
    if path.exists() and not path.is_dir():
        raise XScaleError(f"{what}: {path} is a file, not a folder")
    probe = existing_ancestor(path)
    if not probe.is_dir():
        raise XScaleError(f"{what}: {path} cannot be created: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise XScaleError(f"{what}: {path} is not writable ({probe} does not allow writing)")
    return path


def _base(info: ValidationInfo) -> str | None:
    """The directory relative paths resolve against; None when not loading user input."""
    return (info.context or {}).get("base")


def resolve_data_root(value: str, info: ValidationInfo) -> str:
    base = _base(info)
    if base is None or value in DATA_ROOT_NAMES:
        return value
    return absolute(value, base)


def resolve_path(value: str | None, info: ValidationInfo) -> str | None:
    base = _base(info)
    if base is None or value is None:
        return value
    return absolute(value, base)


def resolve_recipe(value: str | None, info: ValidationInfo) -> str | None:
    """A DeepSpeed recipe is a name from deepspeed_configs/ or a path; paths become absolute."""
    if value is None or _base(info) is None:
        return value
    if "/" in value or os.sep in value or Path(_base(info), value).is_file():
        return absolute(value, _base(info))
    return value


def format_validation_error(err: ValidationError, source: str) -> str:
    """First error of a pydantic ValidationError as `source: key.path: message`; an unknown key
    first (a misspelt key, e.g. with a look-alike letter, also leaves its real key missing)."""
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = ".".join(str(p) for p in first["loc"]) or "<top level>"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        key = str(first["loc"][-1]) if first["loc"] else ""
        odd = [c for c in key if ord(c) > 127]
        msg = "unknown key" + (
            f" (it holds non-ASCII {', '.join(f'U+{ord(c):04X}' for c in odd)}: a look-alike"
            " letter?)"
            if odd
            else ""
        )
    extra = f" (and {len(err.errors()) - 1} more errors)" if len(err.errors()) > 1 else ""
    return f"{source}: {loc}: {msg}{extra}"


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping. Errors are one line naming the file (and line): a missing
    file, bytes that are not UTF-8, invalid YAML, or a key given twice in one mapping (YAML
    would silently keep the last one)."""

    p = Path(path)
    if not p.is_file():
        raise XScaleError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = p.read_bytes()[: e.start].count(b"\n") + 1
        raise XScaleError(f"{p}: line {line}: not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise XScaleError(f"{p}: cannot read ({e.strerror})") from None
    try:
        data = yaml.load(text, Loader=_unique_key_loader())
    except _DuplicateKey as e:
        raise XScaleError(f"{p}: line {e.line}: duplicate key {e.key!r}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise XScaleError(f"{p}:{where} invalid YAML: {getattr(e, 'problem', e)}") from None
    except RecursionError:
        raise XScaleError(f"{p}: invalid YAML: nested too deeply") from None
    except ValueError as e:  # an integer past Python's digit limit (4300 digits)
        what = "an integer with too many digits" if "digits" in str(e) else str(e).split("\n")[0]
        raise XScaleError(f"{p}: invalid YAML: {what}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise XScaleError(f"{p}: expected a mapping of keys at the top level")
    return data


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int):
        super().__init__(f"duplicate key {key!r} at line {line}")
        self.key, self.line = key, line


def _unique_key_loader():
    """yaml.SafeLoader that refuses a key given twice in one mapping."""

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: merged below
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    new = key not in seen
                except TypeError:  # an unhashable key: SafeLoader reports it
                    break
                if not new:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def parse(
    model: type[BaseModel], data: dict[str, Any], source: str, base: str | Path | None = None
):
    """Validate `data` as `model`; relative paths resolve against `base` (see the path rule)."""
    try:
        return model.model_validate(data, context={"base": str(base or Path.cwd())})
    except ValidationError as e:
        raise XScaleError(format_validation_error(e, source)) from None


def default_tracking_uri(output_dir: Path) -> str:
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


# Stores MLflow's client accepts out of the box (plugins may add more: give them as they are
# spelled here, or run a tracking server and pass its http(s) address).
TRACKING_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks", "file")


def checked_tracking_uri(uri: str, what: str) -> str:
    """A tracking URI given on the command line or in the environment (`what`: the flag or
    variable, named in the one-line error), absolute against the current directory."""
    try:
        return normalize_tracking_uri(uri, str(Path.cwd()))
    except ValueError as e:
        raise XScaleError(f"{what}: {e}") from None


# MLflow's client sends these as HTTP basic auth to an http(s) tracking server; libpq (a
# postgresql store's driver) reads PGPASSWORD
CREDENTIAL_ENV = {"user": "MLFLOW_TRACKING_USERNAME", "password": "MLFLOW_TRACKING_PASSWORD"}
PG_PASSWORD_ENV = "PGPASSWORD"


def _userinfo_netloc(uri: str) -> tuple[str, str] | None:
    """(scheme, netloc) of a URI whose netloc holds a user (`user[:password]@host`); None
    otherwise, or when it does not parse."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    return (parts.scheme.lower(), parts.netloc) if "@" in parts.netloc else None


def redact_uri(uri: str) -> str:
    """`uri` with a password (and user name) in it replaced by `***`, for messages."""
    found = _userinfo_netloc(uri)
    if found is None:
        return uri
    netloc = found[1]
    return uri.replace(netloc, "***@" + netloc.rpartition("@")[2], 1)


def without_credentials(uri: str) -> str:
    """`uri` without the user and password it holds, which move to this process's environment
    (inherited by the trials a local Ray starts), so that no file xscale or Ray writes and no
    line it prints holds them: an http(s) server's to MLflow's MLFLOW_TRACKING_USERNAME and
    _PASSWORD, a postgresql store's password to PGPASSWORD. A password in another database URI
    is refused (ValueError): its driver has no environment variable for it."""
    found = _userinfo_netloc(uri)
    if found is None:
        return uri
    scheme, netloc = found
    userinfo, _, host = netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    if scheme in ("http", "https"):
        os.environ[CREDENTIAL_ENV["user"]] = unquote(user)
        if password:
            os.environ[CREDENTIAL_ENV["password"]] = unquote(password)
        return uri.replace(netloc, host, 1)
    if scheme.startswith("postgresql"):
        if password:
            os.environ[PG_PASSWORD_ENV] = unquote(password)
        return uri.replace(netloc, f"{user}@{host}" if user else host, 1)
    if password:
        raise ValueError(
            f"{redact_uri(uri)}: a password in a {scheme} URI would be written into xscale's"
            " and Ray's files; run an MLflow server on that database (mlflow server"
            " --backend-store-uri ...) and give its http(s) address, with the password in"
            " MLFLOW_TRACKING_PASSWORD"
        )
    return uri


# the pip package of each database driver SQLAlchemy may ask for (ImportError.name -> package)
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "MySQLdb": "mysqlclient",
    "pymysql": "pymysql",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}


def check_tracking_store(uri: str, what: str) -> None:
    """Refuse, in one line, a tracking store that can never be used, before anything runs or is
    kept for it: a sqlite file that is a folder or cannot be created, a database URI whose
    driver is not installed (`what`: the key or flag the URI came from)."""
    scheme = uri.partition(":")[0].lower()
    if scheme == "sqlite":
        path = Path(uri[len("sqlite:///") :])
        why = _system_folder(path)
        if why:
            raise XScaleError(f"{what}: {why}; put the MLflow store in a folder of your own")
        if path.is_dir():
            raise XScaleError(f"{what}: {path} is a folder; give the sqlite file inside it")
        probe = existing_ancestor(path.parent)
        if not probe.is_dir():
            raise XScaleError(f"{what}: {path} cannot be created: {probe} is a file")
        writable = path if path.exists() else probe
        if not os.access(writable, os.W_OK):
            raise XScaleError(f"{what}: {path} cannot be written ({writable} is read-only)")
        return
    if scheme.partition("+")[0] in ("postgresql", "mysql", "mssql"):
        from sqlalchemy.engine.url import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            make_url(uri).get_dialect().import_dbapi()
        except (ArgumentError, NoSuchModuleError, ValueError) as e:
            raise XScaleError(f"{what}: {redact_uri(uri)}: {e}") from None
        except ImportError as e:
            module = e.name or str(e)
            package = DRIVER_PACKAGES.get(module, module)
            raise XScaleError(
                f"{what}: {redact_uri(uri)} needs the {module} driver, which is not installed"
                f" here (pip install {package}), or give an MLflow server's http(s) address"
            ) from None


def normalize_tracking_uri(uri: str | None, base: str | None = None) -> str | None:
    """Check a tracking URI's scheme and make a local store's path absolute (against `base`,
    the directory the command runs in), so trial processes in other working directories write
    to the same store: `sqlite:///runs/x.db` -> `sqlite:////abs/runs/x.db`. Raises ValueError
    (one line) for a URI xscale cannot use."""
    if uri is None:
        return None
    raw = uri.strip()
    known = raw.partition(":")[0].lower() in TRACKING_SCHEMES
    text = without_credentials(raw) if known else redact_uri(raw)
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in TRACKING_SCHEMES or (scheme in ("sqlite", "file") and not rest):
        raise ValueError(
            f"{text!r} is not a tracking URI xscale can use; give sqlite:///path/to/mlflow.db"
            " (a local store), http(s)://host:port (an MLflow server), or a database URI"
            f" ({', '.join(TRACKING_SCHEMES)})"
        )
    if base is None:
        return text

    if scheme == "sqlite":
        if not rest.startswith("///"):
            raise ValueError(f"{text!r}: a sqlite URI is sqlite:///<path> (three slashes)")
        path = rest[3:]
        if path in ("", ":memory:"):
            raise ValueError(f"{text!r}: give a file, e.g. sqlite:///runs/mlflow.db")
        return f"sqlite:///{absolute(path, base)}"
    if scheme == "file":
        path = rest[2:] if rest.startswith("//") else rest
        return Path(absolute(path, base)).as_uri()
    return text
