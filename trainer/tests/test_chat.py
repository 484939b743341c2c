"""data.format chat: the tokenizer's own chat template, the loss on the assistant's tokens only,
clear errors for a missing template and malformed rows, and runs that train on chat data."""

import json

import pytest

from conftest import assert_valid_run_files

from finetune_lab.chat import chat_rows, hf_chat_tokens, load_conversations
from finetune_lab.config import ConfigError
from finetune_lab.data import make_batches
from finetune_lab.offline_models import byte_bpe_tokenizer, save_model_folder
from finetune_lab.tokenizer import ByteTokenizer, HFTokenizer
from finetune_lab.train import run

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# The same template with transformers' {% generation %} marks: an independent way to the mask.
CHATML_GENERATION = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}<|im_start|>assistant\n{% generation %}"
    "{{ m['content'] }}<|im_end|>\n{% endgeneration %}{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi, how are you?"},
    {"role": "assistant", "content": "Fine, thanks."},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "2 + 3 = 5."},
]
TEXTS = ["You are terse. Hi, how are you? Fine, thanks. What is 2 + 3? 2 + 3 = 5.",
         "def add(a, b):\n    return a + b\n", "system user assistant\n"]


def chat_tokenizer(template=CHATML):
    return byte_bpe_tokenizer(TEXTS, vocab_size=320, chat_template=template, extra_special=["<|im_start|>", "<|im_end|>"])


def labelled_runs(tok, ids, labels) -> list[str]:
    """The text of each run of consecutive labelled tokens."""
    runs, current = [], []
    for i, label in zip(ids, labels):
        if label != -100:
            assert label == i
            current.append(i)
        elif current:
            runs.append(tok.decode(current))
            current = []
    return runs + ([tok.decode(current)] if current else [])


def test_assistant_tokens_exactly_on_a_known_conversation():
    tok = chat_tokenizer()
    ids, labels = hf_chat_tokens(tok, CONVERSATION)
    assert ids == tok.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True)["input_ids"]
    # each reply and its end-of-turn marker, nothing of the system, user or headers
    assert labelled_runs(tok, ids, labels) == ["Fine, thanks.<|im_end|>\n", "2 + 3 = 5.<|im_end|>\n"]
    reply = tok("Fine, thanks.<|im_end|>\n2 + 3 = 5.<|im_end|>\n", add_special_tokens=False)["input_ids"]
    assert sum(label != -100 for label in labels) == len(reply)
    # transformers' own mask from the {% generation %} version of the template agrees token for token
    marked = chat_tokenizer(CHATML_GENERATION)
    ids2, labels2 = hf_chat_tokens(marked, CONVERSATION)
    assert ids2 == ids and labels2 == labels


def test_template_that_is_not_prefix_stable_is_refused():
    # puts the number of messages in the first line: earlier text changes as turns are added
    tok = chat_tokenizer("{{ messages | length }}\n" + CHATML)
    with pytest.raises(ConfigError, match=r"prefix by prefix.*\{% generation %\}"):
        hf_chat_tokens(tok, CONVERSATION)


def test_tokenizer_without_chat_template_is_a_config_error_naming_the_fix(tmp_path):
    data = tmp_path / "chat.jsonl"
    data.write_text(json.dumps({"messages": CONVERSATION}) + "\n")
    plain = HFTokenizer(byte_bpe_tokenizer(TEXTS))
    with pytest.raises(ConfigError, match=r"no chat template.*chat_template.*data\.format: instruction"):
        make_batches({"train": str(data), "format": "chat", "seq_len": 64}, plain, 2, 0, tmp_path)


@pytest.mark.parametrize("row,field", [
    ('{"text": "hello"}', "messages: missing"),
    ('{"messages": []}', "messages: expected a non-empty list"),
    ('{"messages": [{"role": "bot", "content": "x"}]}', 'messages[0].role: expected system, user or assistant, got "bot"'),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": 5}]}', "messages[1].content: expected a string"),
    ('{"messages": [{"role": "user", "content": "a"}]}', "messages: no assistant message"),
    ('{"messages": [', "row: not valid JSON"),
])
def test_malformed_row_names_file_line_and_field(tmp_path, row, field):
    data = tmp_path / "chat.jsonl"
    data.write_text(json.dumps({"messages": CONVERSATION}) + "\n\n" + row + "\n")
    with pytest.raises(ValueError) as e:
        load_conversations(data)
    assert str(e.value) == f"{data}:3: {field}" or str(e.value).startswith(f"{data}:3: {field}")


def test_builtin_byte_tokenizer_chat_format():
    tok = ByteTokenizer()
    [(ids, labels)] = chat_rows([CONVERSATION[1:3]], tok, seq_len=64)
    expected = [tok.bos_token_id] + list(b"User: Hi, how are you?\nAssistant: ") + list(b"Fine, thanks.") + [tok.eos_token_id]
    assert ids[:len(expected)] == expected and set(ids[len(expected):]) == {tok.pad_token_id}
    assert labels[:len(expected)] == [-100] * (len(expected) - 14) + list(b"Fine, thanks.") + [tok.eos_token_id]
    assert set(labels[len(expected):]) == {-100} and len(ids) == len(labels) == 65


def test_conversations_cut_at_seq_len_and_dropped_without_replies():
    tok = ByteTokenizer()
    long_prompt = [{"role": "user", "content": "x" * 100}, {"role": "assistant", "content": "ok"}]
    rows = chat_rows([CONVERSATION[1:3], long_prompt], tok, seq_len=48)
    assert len(rows) == 1  # the second one's reply starts after 48 tokens
    with pytest.raises(ValueError, match="no conversation has an assistant token within data.seq_len 16"):
        chat_rows([long_prompt], tok, seq_len=16)


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory):
    tok = chat_tokenizer()
    return save_model_folder(tmp_path_factory.mktemp("chat-model"), "llama", tokenizer=tok, hidden_size=32,
                             intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                             max_position_embeddings=128)


@pytest.fixture
def chat_file(tmp_path):
    rows = [CONVERSATION, CONVERSATION[:3], [{"role": "user", "content": "Say yes."}, {"role": "assistant", "content": "Yes."}]]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in rows))
    return path


@pytest.mark.parametrize("base", ["hf", "builtin:tiny"])
def test_short_training_run_on_chat_data(make_run, chat_model, chat_file, base):
    model = f"hf:{chat_model}" if base == "hf" else base
    run_dir = make_run(model={"base": model}, data={"train": str(chat_file), "format": "chat", "seq_len": 64},
                       train={"steps": 3, "batch_size": 2, "warmup_steps": 1, "lr": 1e-3},
                       checkpoint={"every_steps": 0, "keep_last": 1})
    assert run(run_dir) == 0, (run_dir / "events.jsonl").read_text()[-2000:]
    events = assert_valid_run_files(run_dir)
    trains = [e for e in events if e["type"] == "train"]
    assert [e["step"] for e in trains] == [1, 2, 3] and all(e["loss"] > 0 for e in trains)
    # the tokens trained on are the assistant's only: far fewer than batch x seq_len per step
    assert 0 < trains[-1]["tokens"] < 3 * 2 * 64 / 2
    assert events[-1]["status"] == "completed"
