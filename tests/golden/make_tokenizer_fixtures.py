#!/usr/bin/env python3
"""Builds the tokenizer and chat-template fixtures under tests/data/tokenizers.

Published vocabularies cannot be shipped, so this script trains small tokenizers (a few hundred
to a few thousand tokens) with each family's exact normalizer / pre-tokenizer / decoder /
post-processor settings, saves them as HF tokenizer.json (and a SentencePiece tokenizer.model),
and records what HF itself produces for every line of a test corpus:

  <kind>/tokenizer.json, tokenizer_config.json, special_tokens_map.json   the tokenizer
  <kind>/expected.jsonl   one line per corpus entry:
      text, ids (transformers tokenizer(text)["input_ids"]), ids_plain (add_special_tokens=False),
      ids_tokenizers (tokenizers.Tokenizer.encode(text).ids), decoded (decode(ids)),
      decoded_skip (decode(ids, skip_special_tokens=True))
  real/<name>.jsonl       the same for the real GPT-2 and Qwen2.5 vocabularies (not copied here)
  chat/templates/<name>.jinja, chat/cases.jsonl   chat templates and their renderings by
      transformers' apply_chat_template(tokenize=False)
  corpus.jsonl            the corpus ({"text": ...} per line)

Needs: tokenizers 0.23, transformers 5.x, sentencepiece, jinja2. No network.

Usage (from the project root):
  python3 tests/golden/make_tokenizer_fixtures.py --shared PATH/TO/shared/data/tokenizers \
      --out tests/data/tokenizers
--shared is the folder holding gpt2/ and qwen/ (copy ../shared/data/tokenizers next to the
script when ../shared is not mounted). Without it the real-vocabulary and Qwen template parts
are skipped with a message.
"""
import argparse
import json
import os
import sys
import traceback

# ---------------------------------------------------------------------------------------------
# Corpus: many scripts, emoji (incl. ZWJ sequences), code, whitespace runs, digits, contractions
# and special tokens of every family inside text.
# ---------------------------------------------------------------------------------------------
CORPUS = [
    "Hello world",
    " Hello world",
    "Hello World!",
    "Hello, world! How are you?",
    "  leading spaces and trailing spaces   ",
    "   ",
    " ",
    "",
    "\t",
    "\n",
    "\n\n\n",
    "a\tb\t\tc",
    "line one\nline two\r\nline three\n\n  indented line\n",
    "I'm sure you've seen it; they're here, we'll go, he'd say, it's HIS and SHE'S ok. DON'T",
    "can't won't shouldn't y'all ' era '' '''",
    "The quick brown fox jumps over the lazy dog.",
    "Ça va? Élève, naïve café, résumé, Äpfel, Öl, Übermut, straße, Cửa Việt, Đà Nẵng",
    "e\u0301 (e + combining acute) vs \u00e9; A\u030a vs \u00c5; \u1e9b\u0323 and \uFB01 ligature",
    "Ελληνικά γράμματα και λέξεις",
    "нещо на Български, Привет мир!",
    "我想在apple工作1314151天～ 中文分词测试，标点符号。",
    "日本語のテキスト、カタカナとひらがな。東京タワー",
    "한국어 문장입니다. 안녕하세요!",
    "مرحبا بالعالم، هذا نص عربي. ١٢٣",
    "नमस्ते दुनिया, यह हिंदी पाठ है। क्षत्रिय",
    "ภาษาไทย ไม่มีช่องว่าง",
    "កាន់តែពិសេសអាចខលចេញ",
    "🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ (only emoji that has its own token)",
    "👨‍👩‍👧‍👦 family, 👍🏽 thumbs, 🇩🇪🇯🇵 flags, 🏳️‍🌈 and ❤️‍🔥",
    "this is 🦙.cpp and 😁 ?",
    "3", "33", "333", "3333", "33333", "333333", "3333333", "33333333", "333333333",
    "1234567890 3.14159 -42 1e-5 0x1F 1,000,000 2024-06-01 12:30:59",
    "w048 7tuijk dsdfhu",
    "!!!!!! ??? ... --- *** ### @@@",
    "def foo(x):\n    return x ** 2  # square\n\nprint(foo(3))\n",
    "int main() {\n\tstd::vector<int> v{1, 2, 3};\n\treturn v.size() > 2 ? 0 : 1;\n}\n",
    "<html><body class=\"x\">&amp; &lt;tag&gt;</body></html>",
    "{\"key\": [1, 2, {\"nested\": null}], \"s\": \"a\\\\nb\"}",
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
    "https://example.com/path?query=1&x=y#frag user@mail.org",
    "    Hello\n    Hello",
    " (",
    "\n =",
    "Hello<|endoftext|>world",
    "<|endoftext|>",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<think>\nreasoning\n</think>\n\nanswer <tool_call>x</tool_call>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "<s>[INST] hi [/INST] </s>",
    "text with a <mask> token and <mask>   spaced",
    "a [WORD] b x[WORD]y [WORD]",
    "Hello there, said Hello there.",
    "tabs\t\t\tand   many      spaces\t \n \n",
    "MiXeD CaSe WoRdS and ALLCAPS and lowercase",
    "ĠĠ Ġ Ċ byte-level look-alike characters ÿ Ā",
    "\u00a0non-breaking\u00a0space and\u2009thin\u2003em space\u200bzero width",
    "<0x41> looks like a byte token",
    "▁ already a metaspace ▁▁",
    "tokenization pneumonoultramicroscopic HELLO tokenization",
]

# Extra text so that BPE training sees frequent words.
TRAIN_EXTRA = [
    "the of and to in is that for it as was with be by on not he this are or his from at which",
    "Tokenizers split text into tokens. A token is a piece of a word, a word, or a symbol.",
    "Byte pair encoding merges the most frequent pair of symbols again and again.",
    "中文 日本語 한국어 العربية हिन्दी ไทย русский ελληνικά",
    "for i in range(10):\n    print(i)\n",
    "    if x:\n        y = 1\n    else:\n        y = 2\n",
]


def training_texts():
    for _ in range(20):
        for t in TRAIN_EXTRA:
            yield t
    for _ in range(3):
        for t in CORPUS:
            yield t


# ---------------------------------------------------------------------------------------------
# Published chat templates (test data). Qwen templates come from --shared.
# ---------------------------------------------------------------------------------------------
GEMMA3_TEMPLATE = r"""{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '

' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '

' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '
' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>
' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model
'}}
{%- endif -%}
"""

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
    "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

LLAMA31_TEMPLATE = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me a joke.\n\nPlease."}],
    [{"role": "system", "content": "  Padded system prompt.\n"},
     {"role": "user", "content": "  padded user message \n"},
     {"role": "assistant", "content": "\n padded answer  "},
     {"role": "user", "content": "Grüße 😀 你好"}],
    [{"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "<think>\nAdd two and two.\n</think>\n\nThe answer is 4."},
     {"role": "user", "content": "And 3+3?"}],
    [{"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "<think>\nAdd two and two.\n</think>\n\nThe answer is 4."}],
    [{"role": "system", "content": "Be helpful."}, {"role": "user", "content": "Q1"},
     {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"},
     {"role": "assistant", "content": "A2"}, {"role": "user", "content": "Q3"}],
]


# ---------------------------------------------------------------------------------------------
# Tokenizer construction
# ---------------------------------------------------------------------------------------------
GPT2_REGEX = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
                r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
               r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def added(content, id_, special=True, lstrip=False, rstrip=False, single_word=False, normalized=None):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip,
            "rstrip": rstrip, "normalized": (not special) if normalized is None else normalized,
            "special": special}


def train_bpe(pre_tokenizer, normalizer, vocab_size, limit_alphabet=None, byte_level=True):
    from tokenizers import Tokenizer, models, trainers, pre_tokenizers
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    kwargs = dict(vocab_size=vocab_size, show_progress=False, special_tokens=[])
    if byte_level:
        kwargs["initial_alphabet"] = pre_tokenizers.ByteLevel.alphabet()
    if limit_alphabet is not None:
        kwargs["limit_alphabet"] = limit_alphabet
    tok.train_from_iterator(training_texts(), trainers.BpeTrainer(**kwargs))
    return json.loads(tok.to_str())


def finish(model_json, normalizer, pre_tokenizer, post_processor, decoder, added_tokens,
           **model_overrides):
    """Assembles a tokenizer.json document from a trained model and the family's pipeline."""
    model = dict(model_json["model"])
    model.update(model_overrides)
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
            "normalizer": normalizer, "pre_tokenizer": pre_tokenizer,
            "post_processor": post_processor, "decoder": decoder, "model": model}


def append_tokens(model, tokens):
    """Appends tokens to a BPE vocabulary (ids after the current ones); returns their ids."""
    vocab = model["vocab"]
    ids = {}
    for t in tokens:
        if t not in vocab:
            vocab[t] = len(vocab)
        ids[t] = vocab[t]
    return ids


def byte_level_pipeline(regex):
    pre = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    dec = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    return pre, dec


def template_processing(bos, bos_id, eos=None, eos_id=None):
    single = [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]
    pair = single + [{"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}]
    specials = {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}
    if eos is not None:
        single = single + [{"SpecialToken": {"id": eos, "type_id": 0}}]
        specials[eos] = {"id": eos, "ids": [eos_id], "tokens": [eos]}
    return {"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials}


def build_gpt2():
    from tokenizers import pre_tokenizers
    m = train_bpe(pre_tokenizers.ByteLevel(add_prefix_space=False), None, 1000)
    ids = append_tokens(m["model"], ["<|endoftext|>", "<mask>", "[WORD]", "Hello there"])
    toks = [added("<|endoftext|>", ids["<|endoftext|>"]),
            added("<mask>", ids["<mask>"], lstrip=True),
            added("[WORD]", ids["[WORD]"], special=False, single_word=True),
            added("Hello there", ids["Hello there"], special=False, normalized=True)]
    doc = finish(m, None,
                 {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
                 {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
                 {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
                 toks)
    config = {"model_max_length": 1024, "tokenizer_class": "GPT2Tokenizer",
              "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
              "add_prefix_space": False, "clean_up_tokenization_spaces": False}
    return doc, config


def build_llama3():
    from tokenizers import pre_tokenizers, Regex
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    m = train_bpe(pre, None, 1200)
    # Whole words without a merge path: only ignore_merges (a vocabulary lookup of the whole
    # pre-token first) can produce them.
    append_tokens(m["model"], ["Ġtokenization", "Ġpneumonoultramicroscopic", "ĠHELLO"])
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    ids = append_tokens(m["model"], specials)
    toks = [added(s, ids[s]) for s in specials]
    pre_json, dec = byte_level_pipeline(LLAMA3_REGEX)
    doc = finish(m, None, pre_json,
                 {"type": "Sequence", "processors": [
                     {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
                     template_processing("<|begin_of_text|>", ids["<|begin_of_text|>"])]},
                 dec, toks, ignore_merges=True)
    config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
              "clean_up_tokenization_spaces": True, "model_max_length": 131072,
              "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": LLAMA31_TEMPLATE}
    return doc, config


def build_qwen2():
    from tokenizers import pre_tokenizers, normalizers, Regex
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    m = train_bpe(pre, normalizers.NFC(), 1000)
    specials = [("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
                ("<tool_call>", False), ("</tool_call>", False), ("<think>", False), ("</think>", False)]
    ids = append_tokens(m["model"], [s for s, _ in specials])
    toks = [added(s, ids[s], special=sp, normalized=False) for s, sp in specials]
    pre_json = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN2_REGEX}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    doc = finish(m, {"type": "NFC"}, pre_json, bl, bl, toks)
    config = {"add_bos_token": False, "add_prefix_space": False, "bos_token": None,
              "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None,
              "errors": "replace", "clean_up_tokenization_spaces": False, "split_special_tokens": False,
              "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
              "model_max_length": 32768, "tokenizer_class": "Qwen2Tokenizer"}
    return doc, config


def build_sp_bpe(style):
    """SentencePiece-style BPE in tokenizer.json: ▁ for spaces, <0xXX> byte fallback.

    style: 'gemma' (Replace normalizer, no pre-tokenizer, no dummy prefix),
           'gemma3' (as gemma plus Split(" ") pre-tokenizer, merged with previous),
           'llama2' (Prepend ▁ + Replace normalizer, Strip in the decoder),
           'metaspace' (Metaspace pre-tokenizer with prepend_scheme first, Metaspace decoder)."""
    from tokenizers import pre_tokenizers, normalizers
    train_norm = normalizers.Replace(" ", "\u2581")
    m = train_bpe(pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=True),
                  train_norm, 800, limit_alphabet=110, byte_level=False)
    model = m["model"]
    if style in ("gemma", "gemma3"):
        specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
        bos, eos, unk = "<bos>", "<eos>", "<unk>"
    else:
        specials = ["<unk>", "<s>", "</s>"]
        bos, eos, unk = "<s>", "</s>", "<unk>"
    # Specials first (as in the published files), then the trained pieces, then the 256 bytes.
    trained = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    vocab = {}
    for s in specials:
        vocab[s] = len(vocab)
    for t, _ in trained:
        if t not in vocab:
            vocab[t] = len(vocab)
    for b in range(256):
        vocab.setdefault("<0x%02X>" % b, len(vocab))
    vocab.setdefault("\u2581\u2581", len(vocab))
    model["vocab"] = vocab
    toks = [added(s, vocab[s]) for s in specials]
    replace_space = {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}
    dec_replace = {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}
    dec = {"type": "Sequence", "decoders": [dec_replace, {"type": "ByteFallback"}, {"type": "Fuse"}]}
    post = template_processing(bos, vocab[bos])
    overrides = dict(unk_token=unk, fuse_unk=True, byte_fallback=True)
    if style == "gemma":
        doc = finish(m, replace_space, None, post, dec, toks, **overrides)
    elif style == "gemma3":
        split = {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious",
                 "invert": False}
        doc = finish(m, replace_space, split, post, dec, toks, **overrides)
    elif style == "llama2":
        norm = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, replace_space]}
        dec = {"type": "Sequence", "decoders": dec["decoders"] + [
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
        doc = finish(m, norm, None, post, dec, toks, **overrides)
    else:
        meta = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
        doc = finish(m, None, meta, post, meta, toks, **overrides)
    if style in ("gemma", "gemma3"):
        config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<bos>",
                  "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>",
                  "clean_up_tokenization_spaces": False,
                  "tokenizer_class": "GemmaTokenizer", "chat_template": GEMMA3_TEMPLATE}
    else:
        config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
                  "eos_token": "</s>", "unk_token": "<unk>", "legacy": False,
                  "clean_up_tokenization_spaces": False, "tokenizer_class": "LlamaTokenizer"}
    return doc, config


# ---------------------------------------------------------------------------------------------
# Recording HF's behaviour
# ---------------------------------------------------------------------------------------------
def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def load_transformers(folder):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
    try:
        return AutoTokenizer.from_pretrained(folder), "AutoTokenizer"
    except Exception as e:  # noqa: BLE001 - record and fall back
        print(f"  AutoTokenizer failed for {folder}: {e}; using PreTrainedTokenizerFast")
        return PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json")), \
            "PreTrainedTokenizerFast"


def record(folder, out_path, name, disagreements):
    from tokenizers import Tokenizer
    tok, how = load_transformers(folder)
    raw = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    rows = []
    for text in CORPUS:
        ids = tok(text)["input_ids"]
        raw_ids = raw.encode(text).ids
        if ids != raw_ids:
            disagreements.append(f"{name}: transformers {ids} vs tokenizers {raw_ids} for {text!r}")
        rows.append({"text": text, "ids": ids,
                     "ids_plain": tok(text, add_special_tokens=False)["input_ids"],
                     "ids_tokenizers": raw_ids,
                     "decoded": tok.decode(ids), "decoded_skip": tok.decode(ids, skip_special_tokens=True),
                     "decoded_tokenizers": raw.decode(raw_ids, skip_special_tokens=False)})
    write_jsonl(out_path, rows)
    print(f"  {name}: {len(rows)} lines via {type(tok).__name__} ({how}), vocab {len(tok)}")
    return tok


def build_sentencepiece(folder, model_type):
    import sentencepiece as spm
    os.makedirs(folder, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([t for t in training_texts() if t.strip()]),
        model_prefix=os.path.join(folder, "tokenizer"), vocab_size=700, model_type=model_type,
        byte_fallback=True, character_coverage=0.98, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        remove_extra_whitespaces=False, normalization_rule_name="identity",
        split_digits=True, allow_whitespace_only_pieces=True, hard_vocab_limit=False, minloglevel=2)
    os.remove(os.path.join(folder, "tokenizer.vocab"))
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
              "unk_token": "<unk>", "legacy": False, "clean_up_tokenization_spaces": False,
              "tokenizer_class": "LlamaTokenizer"}
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model"))
    rows = []
    for text in CORPUS:
        ids = [sp.bos_id()] + sp.encode(text)
        row = {"text": text, "ids_sentencepiece": ids, "decoded_sentencepiece": sp.decode(ids[1:])}
        try:  # what transformers makes of a folder with only tokenizer.model, for the record
            from transformers import AutoTokenizer
            tok = AutoTokenizer.from_pretrained(folder)
            row["ids"] = tok(text)["input_ids"]
            row["decoded"] = tok.decode(row["ids"])
        except Exception as e:  # noqa: BLE001
            row["transformers_error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
        rows.append(row)
    write_jsonl(os.path.join(folder, "expected.jsonl"), rows)
    print(f"  sentencepiece {model_type}: {len(rows)} lines")


def render_chats(out_dir, templates, tokenizers_by_template):
    rows = []
    os.makedirs(os.path.join(out_dir, "templates"), exist_ok=True)
    for name, template in templates.items():
        with open(os.path.join(out_dir, "templates", name + ".jinja"), "w", encoding="utf-8") as f:
            f.write(template)
        tok = tokenizers_by_template[name]
        tok.chat_template = template
        for conv in CONVERSATIONS:
            for gen in (False, True):
                thinking = (None, True, False) if name == "qwen3" else (None,)
                for think in thinking:
                    kwargs = {} if think is None else {"enable_thinking": think}
                    try:
                        text = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen,
                                                       **kwargs)
                    except Exception as e:  # noqa: BLE001 - e.g. Gemma's alternation check
                        row = {"template": name, "messages": conv, "add_generation_prompt": gen,
                               "error": str(e)}
                    else:
                        row = {"template": name, "messages": conv, "add_generation_prompt": gen,
                               "rendered": text}
                    row["bos_token"] = tok.bos_token or ""
                    if think is not None:
                        row["enable_thinking"] = think
                    rows.append(row)
    write_jsonl(os.path.join(out_dir, "cases.jsonl"), rows)
    print(f"  chat: {len(rows)} renderings of {len(templates)} templates")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (tests/data/tokenizers)")
    ap.add_argument("--shared", help="folder with gpt2/ and qwen/ (shared/data/tokenizers)")
    args = ap.parse_args()
    out = args.out
    os.makedirs(out, exist_ok=True)
    write_jsonl(os.path.join(out, "corpus.jsonl"), [{"text": t} for t in CORPUS])

    import tokenizers
    import transformers
    print(f"tokenizers {tokenizers.__version__}, transformers {transformers.__version__}")
    disagreements = []
    loaded = {}
    builders = {"gpt2": build_gpt2, "llama3": build_llama3, "qwen2": build_qwen2,
                "gemma": lambda: build_sp_bpe("gemma"), "gemma3": lambda: build_sp_bpe("gemma3"),
                "llama2": lambda: build_sp_bpe("llama2"), "metaspace": lambda: build_sp_bpe("metaspace")}
    for kind, build in builders.items():
        folder = os.path.join(out, kind)
        os.makedirs(folder, exist_ok=True)
        doc, config = build()
        with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
        with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=2)
        loaded[kind] = record(folder, os.path.join(folder, "expected.jsonl"), kind, disagreements)

    for model_type in ("bpe", "unigram"):
        try:
            build_sentencepiece(os.path.join(out, "sp_" + model_type), model_type)
        except Exception:  # noqa: BLE001
            traceback.print_exc()

    templates = {"gemma3": GEMMA3_TEMPLATE, "llama3": LLAMA3_TEMPLATE, "llama3.1": LLAMA31_TEMPLATE}
    by_template = {"gemma3": loaded["gemma"], "llama3": loaded["llama3"], "llama3.1": loaded["llama3"]}
    if args.shared:
        os.makedirs(os.path.join(out, "real"), exist_ok=True)
        for name, sub in (("gpt2", "gpt2"), ("qwen2.5", "qwen/qwen2.5-0.5b")):
            folder = os.path.join(args.shared, sub)
            if os.path.isdir(folder):
                try:
                    record(folder, os.path.join(out, "real", name + ".jsonl"), name, disagreements)
                except Exception:  # noqa: BLE001  (one unreadable vocabulary must not cost the rest)
                    traceback.print_exc()
            else:
                print(f"  skipped real vocabulary {name}: {folder} not found")
        for name, sub in (("qwen3", "qwen/qwen3-derived"), ("qwen2.5", "qwen/qwen2.5-0.5b"),
                          ("qwen2", "qwen")):
            path = os.path.join(args.shared, sub, "tokenizer_config.json")
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    templates[name] = json.load(f)["chat_template"]
                by_template[name] = loaded["qwen2"]
            else:
                print(f"  skipped chat template {name}: {path} not found")
    else:
        print("  no --shared: real vocabularies and Qwen templates skipped")
    render_chats(os.path.join(out, "chat"), templates, by_template)

    if disagreements:
        print(f"NOTE: transformers and tokenizers disagree on {len(disagreements)} encodings "
              "(expected.jsonl keeps both; tests compare with transformers' ids):")
        for d in disagreements[:20]:
            print("  " + d)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out) for f in fs)
    print(f"wrote {out}: {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
