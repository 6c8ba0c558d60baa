"""Property test: for random scripted trajectories the loop's output is exactly the transcript.

Checked for every example: ids, mask and logprobs have one length within the budget; the mask
is 1 exactly on tokens the engine returned (a prefix of each reply, never re-tokenized) and 0
exactly on inserted results; every engine call continues from the ids produced so far; each
cut is the smallest one that closes a python block; and decoding the response reproduces the
transcript (model text + results blocks) byte for byte, and the text the reward reads is that
transcript with each results block's output removed.
"""

from __future__ import annotations

import ast
import asyncio

from fakes import FakeScriptedLLMServer, Reply, fake_logprob
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reward_fns import protocol

QUESTION = [{"role": "user", "content": "Solve it."}]

_prose = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="`<>"), max_size=25
)
_literal = st.text(st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters="`<>"), min_size=1, max_size=20)


@st.composite
def reply(draw) -> Reply:
    kind = draw(st.sampled_from(["code", "code", "bash", "answer", "plain"]))
    text = draw(_prose)
    if kind == "code":
        text += f"\n```python\nprint({draw(_literal)!r})\n```\n" + draw(_prose)  # junk after the fence
    elif kind == "bash":
        text += "\n```bash\nprint('never run')\n```\n"
    elif kind == "answer":
        text += f" <<<{draw(_literal)}>>>"
    return Reply(text, eos=draw(st.booleans()))


def decode(tokenizer, ids) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def expected_body(code: str) -> str:
    """The scripted code is `print(<literal>)`: its output is the literal, as the model sees it
    (a literal of only whitespace shows as protocol.NO_OUTPUT_NOTICE)."""
    return protocol.visible_body(ast.literal_eval(code.strip()[len("print(") : -1]))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    script=st.lists(reply(), min_size=1, max_size=5),
    honour_stops=st.booleans(),
    budget=st.integers(8, 300),
    max_code_calls=st.integers(0, 3),
)
# A block printing only whitespace: the model sees "(no output)", not the blanks (a CI flake once).
@example(
    script=[Reply("\n```python\nprint('0')\n```\n"), Reply("\n```python\nprint('0')\n```\n"),
            Reply("\n```python\nprint(' ')\n```\n")],
    honour_stops=False, budget=58, max_code_calls=3,
)
def test_response_is_the_transcript(make_code_loop, tiny_tokenizer, test_sandbox, script, honour_stops, budget, max_code_calls):
    tok = tiny_tokenizer
    server = FakeScriptedLLMServer(tok, script + [Reply("<<<end>>>")] * 8, honour_stops=honour_stops)

    async def roll():
        loop = make_code_loop(
            server, response_length=budget, max_code_calls=max_code_calls, sandbox=test_sandbox
        )
        return await loop.run({"logprobs": True}, raw_prompt=QUESTION)

    out = asyncio.run(roll())
    ids, mask, logprobs = out.response_ids, out.response_mask, out.response_logprobs
    assert len(ids) == len(mask) == len(logprobs) <= budget
    assert all(lp == (fake_logprob(t) if m else 0.0) for t, m, lp in zip(ids, mask, logprobs))

    starts = [len(call["prompt_ids"]) - len(out.prompt_ids) for call in server.calls] + [len(ids)]
    transcript, segment, code_calls = "", [], 0
    scored, model_run = "", []  # what the reward reads: model text, results blocks without output
    for i, call in enumerate(server.calls):
        assert call["prompt_ids"] == out.prompt_ids + ids[: starts[i]]  # token-in/token-out
        chunk, chunk_mask = ids[starts[i] : starts[i + 1]], mask[starts[i] : starts[i + 1]]
        kept = chunk_mask.count(1)
        assert chunk_mask == [1] * kept + [0] * (len(chunk) - kept)
        assert chunk[:kept] == call["token_ids"][:kept]  # generated ids kept verbatim
        segment += chunk[:kept]
        model_run += chunk[:kept]
        transcript += decode(tok, chunk[:kept])
        if kept == len(chunk):
            continue
        seg_text = decode(tok, segment)
        block = protocol.find_python_block(seg_text)
        assert block is not None and protocol.find_python_block(decode(tok, segment[:-1])) is None
        if code_calls < max_code_calls:
            body, code_calls = expected_body(block.code), code_calls + 1
        else:
            body = protocol.call_limit_notice(max_code_calls)
        results = protocol.format_results_block(body, seg_text)
        inserted = decode(tok, chunk[kept:])
        assert inserted == results or (starts[i + 1] == len(ids) == budget and results.startswith(inserted))
        transcript += inserted
        scored += tok.decode(model_run, skip_special_tokens=True) + protocol.scored_results_block(inserted, seg_text)
        segment, model_run = [], []
    assert decode(tok, ids) == transcript
    assert out.extra_fields[protocol.SCORED_RESPONSE_KEY] == scored + tok.decode(model_run, skip_special_tokens=True)
    assert out.extra_fields["num_code_calls"] == code_calls


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=_prose, code=_literal, after=st.text(max_size=12), split=st.integers(0, 40))
def test_fast_cut_agrees_with_exact_search(make_code_loop, tiny_tokenizer, before, code, after, split):
    """The tail-measuring cut and the exact binary search pick the same token, unicode included."""
    loop = make_code_loop(FakeScriptedLLMServer(tiny_tokenizer, []))
    ids = tiny_tokenizer.encode(f"{before}\n```python\n{code}\n```{after}", add_special_tokens=False)
    segment, new = ids[: min(split, len(ids) - 1)], ids[min(split, len(ids) - 1) :]
    if protocol.find_python_block(decode(tiny_tokenizer, segment)) is not None:
        return  # the loop never carries a closed block in its segment
    assert loop._cut_after_block(segment, new) == loop._cut_by_search(segment, new)
