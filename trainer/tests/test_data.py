from pathlib import Path

import torch

from finetune_lab.data import InstructionBatches, PackedText, load_examples, load_texts
from finetune_lab.tokenizer import ByteTokenizer

HERE = Path(__file__).parent


def test_arithmetic_examples_and_splits():
    train = load_examples("builtin:arithmetic", HERE)
    held = load_examples("builtin:arithmetic#heldout", HERE)
    assert train and held and not {e["prompt"] for e in held} & {e["prompt"] for e in train}
    ex = train[0]
    assert ex["response"].endswith(f"The answer is {ex['answer']}.")
    assert load_examples("builtin:arithmetic", HERE) == train  # seeded


def test_packing_is_deterministic_and_shifted():
    texts = load_texts("fixtures/code.jsonl", HERE)
    a = PackedText(texts, ByteTokenizer(), 32, 4, seed=3)
    b = PackedText(texts, ByteTokenizer(), 32, 4, seed=3)
    x, y = a.batch(7)
    assert torch.equal(x, b.batch(7)[0]) and x.shape == (4, 32)
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert not torch.equal(a.batch(0)[0], PackedText(texts, ByteTokenizer(), 32, 4, seed=4).batch(0)[0])


def test_instruction_batches_mask_the_prompt():
    tok = ByteTokenizer()
    ex = {"prompt": "Q: 1+1?\nA:", "response": " 2"}
    x, y = InstructionBatches([ex], tok, 32, 1, seed=0).batch(0)
    targets = [int(t) for t in y[0] if t != -100]
    assert tok.decode(targets) == " 2" and targets[-1] == tok.eos_token_id
    assert int(x[0, 0]) == tok.bos_token_id


def test_chat_messages_are_flattened(tmp_path):
    (tmp_path / "chat.jsonl").write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n')
    [ex] = load_examples("chat.jsonl", tmp_path)
    assert ex == {"prompt": "User: hi\nAssistant:", "response": " hello"}
