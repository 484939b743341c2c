"""The run's config.yaml: validated against schemas/experiment.schema.json, defaults filled
from the schema's own ``default`` keywords (the single source of truth, docs/DECISIONS.md)."""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml

from .module_patterns import pattern_problem
from .paths import schemas_dir

# The two defaults that depend on other fields; the extension applies the same rules.
LORA_LR, FULL_LR = 2e-4, 2e-5  # the paper found LoRA's best LR about 10x higher


class ConfigError(ValueError):
    """A config that does not match the experiment schema; the message names the field."""


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """A schema from schemas/ by short name: experiment | events | status | meta."""
    return json.loads((schemas_dir() / f"{name}.schema.json").read_text(encoding="utf-8"))


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        node = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def fill_defaults(value, schema: dict, root: dict | None = None):
    """Return ``value`` with every missing property that has a schema ``default`` filled in.

    Objects that are absent but whose properties have defaults are created, so
    ``{}`` under ``train`` becomes the full default training section. Arrays fill each item.
    """
    root = root or schema
    schema = _resolve(schema, root)
    branch = _discriminated(value, schema, root)
    if branch is not None:
        return fill_defaults(value, branch, root)
    if isinstance(value, dict) and "properties" in schema:
        out = dict(value)
        for key, sub in schema["properties"].items():
            sub_resolved = _resolve(sub, root)
            if key not in out:
                if "default" in sub:
                    out[key] = copy.deepcopy(sub["default"])
                elif "default" in sub_resolved:
                    out[key] = copy.deepcopy(sub_resolved["default"])
                elif sub_resolved.get("type") == "object" and _has_defaults(sub_resolved, root):
                    out[key] = {}
            if key in out:
                out[key] = fill_defaults(out[key], sub_resolved, root)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [fill_defaults(v, schema["items"], root) for v in value]
    return value


def _discriminated(value, schema: dict, root: dict) -> dict | None:
    """The oneOf branch a ``discriminator`` (an eval task's ``type``) selects for ``value``, if any."""
    tag = (schema.get("discriminator") or {}).get("propertyName")
    if not tag or not isinstance(value, dict) or "oneOf" not in schema:
        return None
    for option in schema["oneOf"]:
        branch = _resolve(option, root)
        prop = (branch.get("properties") or {}).get(tag, {})
        if value.get(tag) == prop.get("const") or value.get(tag) in (prop.get("enum") or []):
            return branch
    return None


def _has_defaults(schema: dict, root: dict) -> bool:
    return any("default" in s or "default" in _resolve(s, root) for s in schema.get("properties", {}).values())


def _field_name(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        path = f"{path}.{missing}" if path else missing
    elif error.validator == "additionalProperties" and "'" in error.message:
        extra = error.message.split("'")[1]
        path = f"{path}.{extra}" if path else extra
    return path or "<root>"


def validate(raw: dict) -> None:
    """Raise ConfigError naming the first offending field."""
    schema = load_schema("experiment")
    validator = jsonschema.Draft7Validator(schema)
    if _depth(raw, MAX_DEPTH + 1) > MAX_DEPTH:  # the extension's rule too (src/core/experiment.ts)
        raise ConfigError(f"invalid config: values are nested more than {MAX_DEPTH} levels deep; a config needs 4")
    try:
        errors = list(validator.iter_errors(raw))
    except RecursionError as e:  # nesting deeper than any config has
        raise ConfigError("invalid config: nested too deeply") from e
    if errors:
        error = _by_discriminator(jsonschema.exceptions.best_match(errors), schema)
        message = error.message if len(error.message) <= 300 else f"{error.message[:299]}…"  # it quotes the value
        raise ConfigError(f"invalid config at '{_field_name(error)}': {message}")
    _check_finite(raw, "")


MAX_DEPTH = 32  # deeper than any config (the schema's deepest value is 4 levels down)


def _depth(value, limit: int) -> int:
    """How deep lists and dicts nest in ``value``, counted no further than ``limit`` (iterative:
    a deep value cannot overflow the stack)."""
    deepest, stack = 0, [(value, 0)]
    while stack and deepest < limit:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return deepest


def _check_finite(value, path: str) -> None:
    # JSON Schema's "number" admits .inf and .nan in Python's validator (not in the extension's Ajv):
    # refuse them here too, so both sides refuse the same configs.
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"invalid config at '{path or '<root>'}': {value} is not a finite number")
    if isinstance(value, dict):
        for key, sub in value.items():
            _check_finite(sub, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            _check_finite(sub, f"{path}.{i}")


def _by_discriminator(error: jsonschema.ValidationError, root: dict) -> jsonschema.ValidationError:
    """A failed oneOf with a discriminator (eval tasks by ``type``) is reported as the error of
    the branch its type selects, as the extension's Ajv does; an unknown type names the types."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    tag = (schema.get("discriminator") or {}).get("propertyName")
    if error.validator != "oneOf" or not tag or not isinstance(error.instance, dict):
        return error
    branch = _discriminated(error.instance, schema, root)
    if branch is None:
        types = [t for o in schema["oneOf"] for p in [(_resolve(o, root).get("properties") or {}).get(tag, {})]
                 for t in ([p["const"]] if "const" in p else p.get("enum", []))]
        return jsonschema.ValidationError(f"{error.instance.get(tag)!r} is not one of {types}", validator="enum",
                                          path=list(error.absolute_path) + [tag])
    inner = list(jsonschema.Draft7Validator({**branch, "definitions": root.get("definitions", {})}).iter_errors(error.instance))
    if not inner:
        return error
    best = jsonschema.exceptions.best_match(inner)
    return jsonschema.ValidationError(best.message, validator=best.validator,
                                      path=list(error.absolute_path) + list(best.absolute_path))


def resolve(raw: dict) -> dict:
    """Validate, fill schema defaults, then the two computed defaults (alpha, lr)."""
    if not isinstance(raw, dict):
        raise ConfigError("invalid config: the top level must be a mapping")
    validate(raw)
    cfg = fill_defaults(raw, load_schema("experiment"))
    cfg.pop("sweep", None)  # a run's config is one point; the creator expands sweeps
    if cfg["method"] == "lora":
        cfg["lora"].setdefault("alpha", 2 * cfg["lora"]["rank"])  # paper v2: alpha = 2*rank
    cfg["train"].setdefault("lr", LORA_LR if cfg["method"] == "lora" else FULL_LR)
    check_sharding(cfg)
    check_module_patterns(cfg)
    return cfg


def check_module_patterns(cfg: dict) -> None:
    """Module regexes that could hang a run at start, or that do not compile (module_patterns.py;
    src/core/modulePatterns.ts applies the same scan)."""
    for section, key in (("lora", "target_modules"), ("spectra", "modules")):
        value = (cfg.get(section) or {}).get(key)
        for i, item in enumerate(value if isinstance(value, list) else []):
            problem = pattern_problem(item)
            if problem:
                raise ConfigError(f"invalid config at '{section}.{key}[{i}]': {problem}")


def check_sharding(cfg: dict) -> None:
    """``launcher.sharding: fsdp`` rules the schema cannot state (src/core/launcherChecks.ts
    applies the same): it shards over the processes of torchrun (or of Slurm's torchrun), so
    ``kind: local`` has nothing to shard over; and it shards full finetuning only: LoRA's frozen
    base is held in bf16 (2 bytes a parameter) and fits one GPU up to tens of billions of
    parameters, so DDP replicates it (docs/DECISIONS.md, "Real scale")."""
    launcher = cfg.get("launcher") or {}
    if launcher.get("sharding") != "fsdp":
        return
    if launcher.get("kind", "local") == "local":
        raise ConfigError("invalid config at 'launcher.sharding': fsdp shards the model over several processes; "
                          "set launcher.kind to torchrun (with nproc_per_node) or slurm, or sharding to none")
    if cfg.get("method") == "lora":
        raise ConfigError("invalid config at 'launcher.sharding': fsdp is for full finetuning; LoRA keeps its "
                          "frozen base in bf16 on every GPU (DDP): set sharding to none, or method to full")
    evals = cfg.get("evals") or {}
    for role in ("learning", "forgetting"):
        for i, task in enumerate(evals.get(role) or []):
            if task.get("type") in UNSHARDED_EVAL_TYPES:
                # lm-eval drives the model by itself (one process), and kl_to_base keeps the base's
                # top-k on one process: neither is written for weights sharded across ranks yet.
                raise ConfigError(f"invalid config at 'evals.{role}[{i}].type': {task['type']} evaluations do not "
                                  "run on an FSDP-sharded model yet; use launcher.sharding none, or score the "
                                  "saved checkpoint with finetune-lab analyse")


# Eval types that need the whole model in one process (check_sharding; src/core/launcherChecks.ts).
UNSHARDED_EVAL_TYPES = ("lm_eval", "kl_to_base")


@dataclass
class RunConfig:
    """A resolved run config. Sections stay dicts, keyed exactly as in the schema."""

    name: str
    method: str  # lora | full
    model: dict
    data: dict
    evals: dict
    train: dict
    spectra: dict
    checkpoint: dict
    launcher: dict
    lora: dict | None = None  # None for full finetuning
    description: str = ""
    raw: dict = field(default_factory=dict, repr=False)  # the resolved dict, for run_started

    @classmethod
    def from_dict(cls, raw: dict) -> "RunConfig":
        cfg = resolve(raw)
        return cls(
            name=cfg["name"], method=cfg["method"], model=cfg["model"], data=cfg["data"],
            evals=cfg["evals"], train=cfg["train"], spectra=cfg["spectra"],
            checkpoint=cfg["checkpoint"], launcher=cfg["launcher"],
            lora=cfg["lora"] if cfg["method"] == "lora" else None,
            description=cfg.get("description", ""), raw=cfg)


def load_config(run_dir: Path | str) -> RunConfig:
    """Read and resolve ``run_dir/config.yaml``."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise ConfigError(f"no config.yaml in {run_dir}")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as e:
        raise ConfigError(f"config.yaml is not valid YAML: {e}") from e
    except (RecursionError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"config.yaml cannot be read: {type(e).__name__}: {str(e)[:200]}") from e
    return RunConfig.from_dict(raw)


class Yaml12Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser when present: faster
    """PyYAML's SafeLoader with YAML 1.2's core-schema scalars, as the extension's ``yaml`` package
    reads and writes them. PyYAML follows YAML 1.1, where ``1e-7`` is a string (1.1 floats need a
    dot), ``on``/``yes``/``no`` are booleans and ``1_000`` or ``1:30`` are integers: a config.yaml
    that the extension wrote with ``lr: 1e-7`` would otherwise fail here as "not a number"."""


# Reset the implicit resolvers, then register YAML 1.2 core: null, bool, int, float.
Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     list("-+.0123456789")),
]:
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(_regexp), _first)


def _yaml12_int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _yaml12_float(loader, node):
    text = loader.construct_scalar(node).lower()
    if text.endswith(".inf"):
        return -math.inf if text.startswith("-") else math.inf
    return math.nan if text == ".nan" else float(text)


def _mapping_without_duplicates(loader, node, deep=False):
    # YAML forbids a key twice in one mapping; PyYAML keeps the last one silently, the extension's
    # parser refuses the file: refuse it here too (which value did the user mean?).
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool)):
            continue  # an unhashable key: the schema refuses it later
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


Yaml12Loader.construct_mapping = _mapping_without_duplicates
Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _yaml12_int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _yaml12_float)
