"""Training recipes: one YAML file per seed system (``recipes/*.yaml``), read by ``asc-edge train --config``.

A recipe is a YAML mapping of :class:`~asc_edge.train.config.TrainConfig` field names (``augment:``
may be a nested mapping of :class:`~asc_edge.augment.AugmentConfig` fields, ``model_kwargs:`` a
mapping of model keyword arguments) plus three descriptive keys that are not settings:

``report``           the DCASE technical report the recipe follows (text)
``notes``            what is reproduced, what needs weights that are not here, how to run it (text)
``teachers_recipe``  the teacher ensemble ``asc-edge train-teachers`` trains for it: a mapping with
                     ``ensemble`` (a name of :data:`asc_edge.train.teachers.ENSEMBLES`) and optional
                     ``epochs``, ``frontend`` (one preset for every member) and ``notes``

Example (``recipes/tencent2023.yaml``, shortened)::

    report: Tencent, DCASE 2023 Task 1 technical report
    model: cp-resnet-s1
    kd_scheme: hinton
    kd_tau: 3.0
    augment:
      mixstyle_p: 0.4

Every key is checked against the dataclass fields: a typo is a :class:`~asc_edge.errors.ConfigError`
naming the key, the file and the valid names. Values are checked against the field's type (an ``int``
field takes no text, ``split: 5`` is read as ``"5"``). Relative paths in a recipe (``teacher_logits``,
``teachers``, ``dirs``, ...) are taken relative to the working directory, as on the command line.

``asc-edge train --config FILE [flags]``: the recipe's values, then every flag the user actually
typed on top (:func:`merge_config`); flags left at their defaults do not override the recipe.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..augment import AugmentConfig
from ..errors import ConfigError
from .config import TrainConfig

__all__ = ["META_KEYS", "RECIPES_DIR", "load_recipe", "merge_config", "recipe_names", "resolve_recipe",
           "train_fields"]

#: Descriptive keys of a recipe that are not TrainConfig settings.
META_KEYS = ("report", "notes", "teachers_recipe")
#: Keys of the ``teachers_recipe:`` block.
TEACHERS_RECIPE_KEYS = ("ensemble", "epochs", "frontend", "notes")
#: The recipes shipped with asc-edge (the repository's ``recipes/`` folder).
RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"


def train_fields() -> dict[str, dataclasses.Field]:
    """TrainConfig's fields by name (whatever this version of TrainConfig has)."""
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def recipe_names() -> list[str]:
    """Names of the shipped recipes (``recipes/<name>.yaml``)."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")) if RECIPES_DIR.is_dir() else []


def resolve_recipe(path: str | Path) -> Path:
    """``path`` itself when it exists, else a shipped recipe by name (``kt2024`` → ``recipes/kt2024.yaml``).

    Raises:
        ConfigError: neither exists.
    """
    p = Path(path)
    if p.is_file():
        return p
    if p.suffix == "" and len(p.parts) == 1 and (RECIPES_DIR / f"{p.name}.yaml").is_file():
        return RECIPES_DIR / f"{p.name}.yaml"
    if p.is_dir():
        raise ConfigError(f"recipe {p} is a folder, not a YAML file", hint="give one recipes/*.yaml file")
    names = recipe_names()
    raise ConfigError(f"recipe file not found: {p}",
                      hint="give the path of a YAML recipe" + (f" or a shipped one: {', '.join(names)}"
                                                                if names else ""))


# ----------------------------------------------------------------------------------- type checks
def _type_ok(value: Any, annotation: str) -> tuple[bool, Any]:
    """Whether ``value`` fits the (string) annotation of a dataclass field, and the value converted
    (int → float for float fields). Unknown annotations accept anything."""
    parts = [a.strip() for a in str(annotation).split("|")]
    if value is None:
        return ("None" in parts or "Optional" in str(annotation)), None
    for part in parts:
        if part == "None":
            continue
        if part == "bool":
            if isinstance(value, bool):
                return True, value
        elif part == "int":
            if isinstance(value, int) and not isinstance(value, bool):
                return True, value
        elif part == "float":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return True, float(value)
        elif part == "str":
            if isinstance(value, str):
                return True, value
        elif part.startswith("list"):
            if isinstance(value, list) and (part != "list[str]" or all(isinstance(v, str) for v in value)):
                return True, list(value)
        elif part.startswith("dict"):
            if isinstance(value, dict):
                return True, dict(value)
        else:  # AugmentConfig (checked separately) or an annotation this loader does not know
            return True, value
    return False, value


def _type_name(annotation: str) -> str:
    return str(annotation).replace("list[str]", "list of text").replace("str", "text").replace(" | None", " or null")


def _check_field(path: Path, key: str, value: Any, annotation: str) -> Any:
    if key == "split" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # `split: 5`
    ok, converted = _type_ok(value, annotation)
    if not ok:
        raise ConfigError(f"{path}: {key}: expected {_type_name(annotation)}, got {value!r}",
                          hint=f"fix the value of {key!r} in the recipe")
    return converted


def _check_augment(path: Path, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: augment: expected a mapping of augmentation settings, got {value!r}",
                          hint="write e.g. `augment: {mixstyle_p: 0.4, dir_p: 0.0}`")
    aug_fields = {f.name: f for f in dataclasses.fields(AugmentConfig)}
    out = {}
    for k, v in value.items():
        if k not in aug_fields:
            raise ConfigError(f"{path}: unknown key 'augment.{k}'",
                              hint=f"valid augment keys: {', '.join(aug_fields)}")
        out[k] = _check_field(path, f"augment.{k}", v, aug_fields[k].type)
    try:
        AugmentConfig.from_dict(out)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}", hint=exc.hint) from None
    return out


def _check_teachers_recipe(path: Path, value: Any) -> dict:
    from .teachers import ENSEMBLES

    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: teachers_recipe: expected a mapping with 'ensemble', got {value!r}",
                          hint=f"write e.g. `teachers_recipe: {{ensemble: {next(iter(ENSEMBLES))}}}`")
    for k in value:
        if k not in TEACHERS_RECIPE_KEYS:
            raise ConfigError(f"{path}: unknown key 'teachers_recipe.{k}'",
                              hint=f"valid teachers_recipe keys: {', '.join(TEACHERS_RECIPE_KEYS)}")
    if value.get("ensemble") not in ENSEMBLES:
        raise ConfigError(f"{path}: teachers_recipe.ensemble {value.get('ensemble')!r} is not a known ensemble",
                          hint=f"use one of {', '.join(ENSEMBLES)}")
    epochs = value.get("epochs")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ConfigError(f"{path}: teachers_recipe.epochs must be a positive integer, got {epochs!r}",
                          hint="e.g. `epochs: 100`, or leave it out")
    fe = value.get("frontend")
    if fe is not None:
        from ..features import PRESETS

        if fe not in PRESETS:
            raise ConfigError(f"{path}: teachers_recipe.frontend {fe!r} is not a known preset",
                              hint=f"use one of {', '.join(PRESETS)}")
    return dict(value)


# ------------------------------------------------------------------------------------- loading
def load_recipe(path: str | Path) -> dict:
    """Read and check one recipe; returns ``{key: value}`` with TrainConfig fields (``augment`` as a
    plain dict) and the descriptive keys of :data:`META_KEYS`.

    Raises:
        ConfigError: missing file, invalid YAML, a top level that is not a mapping, an unknown key
            (the message names the key, the file and the valid names) or a value of the wrong type.
    """
    path = resolve_recipe(path)
    try:
        import yaml
    except ImportError:
        raise ConfigError(f"cannot read {path}: PyYAML is not installed",
                          hint="pip install PyYAML (in asc-edge's environment)") from None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read recipe {path}: {exc}", hint="give a readable UTF-8 YAML file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}",
                          hint="fix the YAML syntax (key: value lines, spaces not tabs for indentation)") from None
    if not isinstance(data, Mapping):
        what = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        raise ConfigError(f"{path}: the recipe is {what}",
                          hint="write TrainConfig settings as `key: value` lines, e.g. `model: cp-mobile`")
    fields = train_fields()
    valid = sorted(fields) + list(META_KEYS)
    recipe: dict = {}
    for key, value in data.items():
        if not isinstance(key, str) or (key not in fields and key not in META_KEYS):
            raise ConfigError(f"{path}: unknown key {key!r}", hint=f"valid keys: {', '.join(valid)}")
        if key == "augment":
            recipe[key] = _check_augment(path, value)
        elif key == "teachers_recipe":
            recipe[key] = _check_teachers_recipe(path, value)
        elif key in ("report", "notes"):
            if not isinstance(value, str):
                raise ConfigError(f"{path}: {key}: expected text, got {value!r}",
                                  hint=f"write {key} as a YAML string (use `|` for several lines)")
            recipe[key] = value
        else:
            recipe[key] = _check_field(path, key, value, fields[key].type)
    return recipe


# ------------------------------------------------------------------------------------- merging
def merge_config(recipe: Mapping[str, Any], flags: Mapping[str, Any], given: set[str] | frozenset[str]) -> TrainConfig:
    """The TrainConfig of ``recipe`` with command-line ``flags`` on top.

    ``flags`` maps a setting to the flag's value: a TrainConfig field name, ``augment.<name>`` or
    ``model_kwargs.<name>``. A flag in ``given`` (typed by the user) always wins; any other flag only
    fills a setting the recipe leaves out, and a ``None`` value there means "TrainConfig's default".
    ``frontend`` left unset everywhere becomes the model's own preset.

    Raises:
        ConfigError: no ``data``.
    """
    from ..models import get_spec

    fields = train_fields()
    kw = {k: copy.deepcopy(v) for k, v in recipe.items() if k in fields}
    aug = dict(kw.pop("augment", None) or {})
    model_kwargs = dict(kw.pop("model_kwargs", None) or {})
    for key, value in flags.items():
        group, _, sub = key.partition(".")
        if sub and group == "augment":
            target, name = aug, sub
        elif sub and group == "model_kwargs":
            target, name = model_kwargs, sub
        else:
            target, name = kw, key
        if key in given or (name not in target and value is not None):
            target[name] = value
    if not kw.get("data"):
        raise ConfigError("no dataset given", hint="pass --data DATASET_ROOT (TAU 2022 Mobile layout)")
    kw["model_kwargs"] = model_kwargs
    kw["augment"] = AugmentConfig.from_dict(aug)
    if not kw.get("frontend"):
        kw["frontend"] = get_spec(kw.get("model") or fields["model"].default).frontend
    return TrainConfig(**kw)
