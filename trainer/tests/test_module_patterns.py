"""Module regexes that backtrack are refused before anything matches them (module_patterns.py);
the extension's scan (src/core/modulePatterns.ts) is checked against the same table."""

import json
import re
from pathlib import Path

import pytest

from finetune_lab.config import ConfigError, RunConfig
from finetune_lab.module_patterns import backtracking_group

CASES = json.loads((Path(__file__).parent / "fixtures" / "module_patterns.json").read_text())["cases"]


@pytest.mark.parametrize("pattern, group", CASES)
def test_the_scan_names_the_groups_the_shared_table_names(pattern, group):
    assert backtracking_group(pattern) == group


def config(**sections):
    return {"name": "x", "model": {"base": "builtin:tiny"}, "data": {"train": "builtin:brown"},
            "method": "lora", **sections}


@pytest.mark.parametrize("sections, field, words", [
    ({"lora": {"target_modules": ["q_proj", "([\\w.]+)+Z"]}}, "lora.target_modules[1]",
     r"'\(\[\\w\.\]\+\)\+' repeats a group that itself repeats or has alternatives"),
    ({"spectra": {"modules": ["(\\w|[a-z])+_proj"]}}, "spectra.modules[0]", "exponential time"),
    ({"lora": {"target_modules": ["q_proj("]}}, "lora.target_modules[0]", "not a valid regular expression"),
])
def test_a_config_with_such_a_pattern_is_refused_with_the_field(sections, field, words):
    # matched against a module name, the first two take hours (PEFT would hang the run at start)
    with pytest.raises(ConfigError, match=re.escape(f"'{field}': ") + f".*{words}"):
        RunConfig.from_dict(config(**sections))


def test_plain_names_and_safe_regexes_still_pass():
    cfg = RunConfig.from_dict(config(lora={"target_modules": ["q_proj", ".*\\.(q|v)_proj"]},
                                     spectra={"modules": ["(mlp\\.)?down_proj"]}))
    assert cfg.lora["target_modules"] == ["q_proj", ".*\\.(q|v)_proj"]
