import pytest

from finetune_lab.config import ConfigError, RunConfig, load_schema


def minimal(**extra):
    return {"name": "x", "model": {"base": "builtin:tiny"}, "data": {"train": "builtin:brown"},
            "method": "lora", **extra}


def test_defaults_come_from_the_schema():
    cfg = RunConfig.from_dict(minimal())
    props = load_schema("experiment")["properties"]
    assert cfg.train["steps"] == props["train"]["properties"]["steps"]["default"]
    assert cfg.lora["rank"] == props["lora"]["properties"]["rank"]["default"]
    assert cfg.data["seq_len"] == props["data"]["properties"]["seq_len"]["default"]
    assert cfg.lora["target_modules"] == "all"
    assert cfg.evals == {"every_steps": 50, "learning": [], "forgetting": []}


def test_computed_defaults():
    lora = RunConfig.from_dict(minimal(lora={"rank": 8}))
    assert lora.lora["alpha"] == 16 and lora.train["lr"] == 2e-4
    full = RunConfig.from_dict(minimal(method="full"))
    assert full.train["lr"] == 2e-5 and full.lora is None
    explicit = RunConfig.from_dict(minimal(lora={"rank": 8, "alpha": 3}, train={"lr": 0.1}))
    assert explicit.lora["alpha"] == 3 and explicit.train["lr"] == 0.1


def test_eval_task_items_get_defaults():
    cfg = RunConfig.from_dict(minimal(evals={"learning": [{"name": "c", "type": "loss", "data": "builtin:brown#heldout"}]}))
    assert cfg.evals["learning"][0]["max_examples"] == 64


def test_each_eval_type_gets_its_own_defaults():
    cfg = RunConfig.from_dict(minimal(evals={"forgetting": [
        {"name": "hs", "type": "lm_eval", "task": "hellaswag"},
        {"name": "kl", "type": "kl_to_base", "data": "builtin:brown#heldout"}]}))
    assert cfg.evals["forgetting"] == [{"name": "hs", "type": "lm_eval", "task": "hellaswag", "limit": 100, "batch_size": 8},
                                       {"name": "kl", "type": "kl_to_base", "data": "builtin:brown#heldout", "n": 16, "top_k": 32}]


@pytest.mark.parametrize("task, message", [
    ({"name": "a", "type": "lm_eval", "task": "x", "limt": 3}, "'evals.learning.0.limt': Additional properties are not allowed"),
    ({"name": "a", "type": "lm_eval"}, "'evals.learning.0.task': 'task' is a required property"),
    ({"name": "a", "type": "lm-eval", "task": "x"}, "'evals.learning.0.type': 'lm-eval' is not one of ['loss', 'multiple_choice', 'exact_match', 'lm_eval', 'kl_to_base']"),
    ({"name": "a", "type": "kl_to_base", "data": "builtin:brown", "n": 0}, "'evals.learning.0.n': 0 is less than the minimum of 1"),
    ({"name": "a", "type": "loss", "data": "builtin:brown", "task": "x"}, "'evals.learning.0.task': Additional properties"),
])
def test_a_bad_eval_task_is_reported_for_its_type(task, message):
    """The schema's eval task is a oneOf chosen by `type` (a discriminator): the trainer reports the
    error of the shape the type picks, as the extension does, not a failed oneOf."""
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(minimal(evals={"learning": [task]}))
    assert message in str(e.value)


@pytest.mark.parametrize("bad, field", [
    ({"train": {"lr": "fast"}}, "train.lr"),
    ({"lora": {"rank": 0}}, "lora.rank"),
    ({"train": {"stepz": 3}}, "train.stepz"),
    ({"method": "qlora"}, "method"),
])
def test_bad_config_names_the_field(bad, field):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        RunConfig.from_dict(minimal(**bad))


@pytest.mark.parametrize("extra, message", [
    ({"method": "full", "launcher": {"sharding": "fsdp"}}, "fsdp shards the model over several processes"),
    ({"launcher": {"kind": "torchrun", "nproc_per_node": 2, "sharding": "fsdp"}}, "fsdp is for full finetuning"),
])
def test_sharding_rules_name_the_field(extra, message):
    with pytest.raises(ConfigError, match=f"'launcher.sharding': {message}"):
        RunConfig.from_dict(minimal(**extra))


def test_sharding_fsdp_with_torchrun_or_slurm_and_full_finetuning():
    for kind in ("torchrun", "slurm"):
        cfg = RunConfig.from_dict(minimal(method="full", launcher={"kind": kind, "sharding": "fsdp"}))
        assert cfg.launcher["sharding"] == "fsdp"
    assert RunConfig.from_dict(minimal()).launcher["sharding"] == "none"
