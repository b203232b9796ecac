"""Search spaces of a phase's hyperparameters, parsed once from the sweep file: a field is a fixed
value or a mapping with one key (choice, grid, uniform, loguniform, randint), each option
validated against the phase's typed config so an error names its index."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

SPACE_KINDS = ("choice", "grid", "uniform", "loguniform", "randint")


GRID_KINDS = ("choice", "grid")


class FieldError(Exception):
    """A semantic error at `path`; turned into `file: path: message` by `build_sweep`."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path, self.message = path, message


@dataclass(frozen=True)
class SearchSpace:
    """One searched hyperparameter. `values` are the options (choice/grid) or (lo, hi)."""

    kind: Literal["choice", "grid", "uniform", "loguniform", "randint"]
    values: tuple

    @property
    def is_grid(self) -> bool:
        return self.kind == "grid"

    def to_tune(self):
        """The Ray Tune domain: grid_search / choice / uniform / loguniform / randint."""
        from ray import tune

        if self.kind == "grid":
            return tune.grid_search(list(self.values))
        if self.kind == "choice":
            return tune.choice(list(self.values))
        lo, hi = self.values
        if self.kind == "uniform":
            return tune.uniform(lo, hi)
        if self.kind == "loguniform":
            return tune.loguniform(lo, hi)
        return tune.randint(lo, hi + 1)  # Ray's upper bound is exclusive; ours is inclusive


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _field_error(cls: type[BaseModel], field: str, value: Any) -> str | None:
    """Pydantic's message if `value` is not valid for `cls.field`, else None."""
    try:
        cls.model_validate({field: value})
    except ValidationError as e:
        return e.errors()[0]["msg"]
    return None


def _takes_float(cls: type[BaseModel], field: str) -> bool:
    ann = cls.model_fields[field].annotation
    return ann is float or float in getattr(ann, "__args__", ())


def _parse_space(
    cls: type[BaseModel], field: str, raw: dict, path: str, method: str
) -> SearchSpace:
    if len(raw) != 1 or next(iter(raw)) not in SPACE_KINDS:
        got = ", ".join(map(str, raw)) or "nothing"
        raise FieldError(
            path,
            f"a search space is a mapping with exactly one of {', '.join(SPACE_KINDS)} (got {got})",
        )
    kind, values = next(iter(raw.items()))
    path = f"{path}.{kind}"
    if method == "grid" and kind not in GRID_KINDS:
        raise FieldError(
            path, f"{kind} needs search.method optuna (grid search takes grid or choice)"
        )
    if method == "optuna" and kind == "grid":
        raise FieldError(path, "grid is not allowed with search.method optuna; use choice")
    if not isinstance(values, list) or not values:
        raise FieldError(path, "expected a non-empty list")
    if kind in GRID_KINDS:
        for i, v in enumerate(values):
            if isinstance(v, dict | list):
                raise FieldError(f"{path}.{i}", "options must be plain values")
            if (msg := _field_error(cls, field, v)) is not None:
                raise FieldError(f"{path}.{i}", msg)
            if v in values[:i]:
                raise FieldError(f"{path}.{i}", f"duplicate option {v!r}")
        return SearchSpace("grid" if method == "grid" else kind, tuple(values))
    if len(values) != 2:
        raise FieldError(path, "expected [low, high]")
    for i, v in enumerate(values):
        ok = isinstance(v, int) and not isinstance(v, bool) if kind == "randint" else _is_number(v)
        if not ok:
            raise FieldError(
                f"{path}.{i}", f"expected {'an integer' if kind == 'randint' else 'a number'}"
            )
    lo, hi = values
    if not lo < hi:
        raise FieldError(path, f"low must be < high (got [{lo}, {hi}])")
    if kind == "loguniform" and lo <= 0:
        raise FieldError(f"{path}.0", "loguniform needs low > 0")
    if kind != "randint" and not _takes_float(cls, field):
        raise FieldError(
            path, f"{field} takes integers; {kind} samples floats (use randint or choice)"
        )
    for i, v in enumerate(values):
        if (msg := _field_error(cls, field, float(v) if kind != "randint" else v)) is not None:
            raise FieldError(f"{path}.{i}", msg)
    return SearchSpace(kind, (float(lo), float(hi)) if kind != "randint" else (lo, hi))


def _parse_phase(
    cls: type[BaseModel], raw: dict[str, Any], prefix: str, method: str, allow_search: bool
) -> dict[str, Any]:
    """Validate one phase section: field -> fixed value | SearchSpace."""
    out: dict[str, Any] = {}
    for field, value in raw.items():
        path = f"{prefix}.{field}"
        if field not in cls.model_fields:
            close = difflib.get_close_matches(str(field), cls.model_fields, n=1)
            raise FieldError(
                path, "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
            )
        if isinstance(value, dict):
            if not allow_search:
                raise FieldError(path, "search spaces are only allowed in intermediate and target")
            out[field] = _parse_space(cls, field, value, path, method)
            continue
        if (msg := _field_error(cls, field, value)) is not None:
            raise FieldError(path, msg)
        out[field] = value
    return out
