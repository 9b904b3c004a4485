"""English and Simplified Chinese: the browser's choice, the switch, pushes and the catalogue."""

import ast
import gettext
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from conversations import errors, services
from conversations.models import Message, MessageStatus
from conversations.services.replies import INTERRUPTED_TEXT
from tests.factories import thread
from tests.fake_provider import Reply
from tests.wsclient import ChatSocket

ZH = "zh-CN,zh;q=0.9,en;q=0.8"
CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
RERUN = "run `make messages`, translate what is new or fuzzy in django.po, and commit the .mo"


@pytest.fixture(autouse=True)
def _back_to_the_default_language():
    """LocaleMiddleware leaves the last request's language active in this thread."""
    yield
    translation.deactivate()


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


# --- Pages -----------------------------------------------------------------------------


def test_a_chinese_browser_gets_the_chinese_interface(logged_in, conversation):
    page = logged_in.get(f"/c/{conversation.uuid}/", HTTP_ACCEPT_LANGUAGE=ZH)
    html = page.content.decode()
    assert '<html lang="zh-hans">' in html
    for text in ("发送", "停止", "设置", "导出", "我的用量", "退出登录"):
        assert text in html, text
    assert ">Send<" not in html and "Log out" not in html


def test_the_reconnecting_line_drawn_by_css_is_in_the_readers_language(logged_in, conversation):
    # The stylesheet draws it from the composer's attribute (content: attr(data-offline)).
    html = logged_in.get(f"/c/{conversation.uuid}/", HTTP_ACCEPT_LANGUAGE=ZH).content.decode()
    assert 'data-offline="正在重新连接…"' in html


def test_an_english_browser_and_one_that_asks_nothing_get_english(logged_in, conversation):
    for headers in ({"HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9"}, {}):
        html = logged_in.get(f"/c/{conversation.uuid}/", **headers).content.decode()
        assert '<html lang="en">' in html
        assert ">Send<" in html and "Log out" in html and "发送" not in html


def test_an_unsupported_language_falls_back_to_english(logged_in):
    html = logged_in.get("/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9").content.decode()
    assert "What can I help with?" in html


def test_the_switch_sets_a_cookie_that_wins_over_the_browser(logged_in, conversation):
    chat = f"/c/{conversation.uuid}/"
    switched = logged_in.post(
        "/i18n/setlang/", {"language": "en", "next": chat}, HTTP_ACCEPT_LANGUAGE=ZH
    )
    assert switched.status_code == 302 and switched["Location"] == chat
    assert switched.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    html = logged_in.get(chat, HTTP_ACCEPT_LANGUAGE=ZH).content.decode()
    assert ">Send<" in html and "发送" not in html
    logged_in.post("/i18n/setlang/", {"language": "zh-hans", "next": chat})
    html = logged_in.get(chat, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "发送" in html


def test_every_app_page_offers_the_switch_with_the_current_language_chosen(logged_in):
    html = logged_in.get("/usage/", HTTP_ACCEPT_LANGUAGE=ZH).content.decode()
    switch = re.search(r'<form class="language-switch".*?</form>', html, re.S).group(0)
    assert 'action="/i18n/setlang/"' in switch and 'name="next" value="/usage/"' in switch
    assert '<option value="zh-hans" lang="zh-hans" selected>简体中文</option>' in switch
    assert '<option value="en" lang="en">English</option>' in switch


@pytest.mark.parametrize(
    ("path", "chinese"), [("/accounts/login/", "用户名"), ("/accounts/signup/", "创建账号")]
)
def test_login_and_signup_are_translated_and_offer_the_switch(client, db, path, chinese):
    html = client.get(path, HTTP_ACCEPT_LANGUAGE=ZH).content.decode()
    assert chinese in html and 'class="language-switch"' in html


@pytest.mark.parametrize(
    ("path", "chinese"),
    [
        ("/", "有什么可以帮你的？"),
        ("/usage/", "按日期"),
        ("/settings/api/", "个人 API 令牌"),
        ("/archived/", "已归档的对话"),
    ],
)
def test_each_page_reads_in_chinese(logged_in, path, chinese):
    html = logged_in.get(path, HTTP_ACCEPT_LANGUAGE=ZH).content.decode()
    assert chinese in html and "退出登录" in html


def test_the_usage_page_shows_the_month_the_chinese_way(logged_in):
    html = logged_in.get("/usage/", {"month": "2026-03"}, HTTP_ACCEPT_LANGUAGE=ZH).content
    assert "我的用量 · 2026年3月" in html.decode()


# --- Errors from services --------------------------------------------------------------


def test_a_service_error_comes_back_in_chinese_through_the_view(logged_in, conversation):
    response = logged_in.post(
        f"/c/{conversation.uuid}/settings/",
        {"model": conversation.chat_model_id, "parameters": "1", "temperature": "2.5"},
        HTTP_ACCEPT_LANGUAGE=ZH,
        HTTP_HX_REQUEST="true",
    )
    assert "温度必须在 0 到 2 之间（当前为 2.5）。" in response.content.decode()


def test_a_service_error_stays_english_for_everyone_else(logged_in, conversation):
    response = logged_in.post(
        f"/c/{conversation.uuid}/settings/",
        {"model": conversation.chat_model_id, "parameters": "1", "temperature": "2.5"},
        HTTP_HX_REQUEST="true",
    )
    assert "Temperature must be between 0 and 2 (got 2.5)." in response.content.decode()


def test_an_error_saved_in_english_is_shown_in_the_readers_language():
    refused = errors.REFUSED_WITH_DETAIL % {"detail": "model not found"}
    with translation.override("zh-hans"):
        assert errors.translated(str(errors.ProviderRateLimited())) == (
            "模型服务商正在限制请求频率，请稍候再试。"
        )
        assert errors.translated(refused) == "模型服务商拒绝了该请求：model not found"
        assert errors.translated("Some provider's own words.") == "Some provider's own words."
    assert errors.translated(refused) == refused


# --- The socket ------------------------------------------------------------------------


def _socket(conversation, *, headers: list[tuple[bytes, bytes]]) -> ChatSocket:
    tab = ChatSocket(conversation, conversation.owner)
    tab.communicator.scope["headers"] = headers
    return tab


@pytest.mark.django_db(transaction=True)
async def test_a_service_error_comes_back_in_chinese_through_the_socket(conversation):
    tab = _socket(conversation, headers=[(b"accept-language", ZH.encode())])
    assert await tab.connect()
    await tab.say("   ", "k1")
    await tab.read_until(lambda page: "请先输入消息。" in page.notices)
    await tab.close()


@pytest.mark.django_db(transaction=True)
async def test_an_error_worded_in_the_services_thread_is_in_the_sockets_language(
    conversation, settings
):
    settings.MESSAGE_MAX_CHARS = 10
    tab = _socket(conversation, headers=[(b"accept-language", ZH.encode())])
    assert await tab.connect()
    await tab.say("x" * 20, "k1")
    await tab.read_until(lambda page: "消息太长（20 个字符，上限为 10）。" in page.notices)
    await tab.close()


@pytest.mark.django_db(transaction=True)
async def test_the_language_cookie_wins_over_the_browser_on_the_socket(conversation):
    cookie = f"{settings.LANGUAGE_COOKIE_NAME}=zh-hans".encode()
    tab = _socket(conversation, headers=[(b"accept-language", b"en"), (b"cookie", cookie)])
    assert await tab.connect()
    await tab.send(action="dance")
    await tab.read_until(lambda page: "未知操作 'dance'。" in page.notices)
    await tab.close()


@pytest.mark.django_db(transaction=True)
async def test_each_socket_sees_a_streamed_reply_in_its_own_language(conversation, fake_provider):
    fake_provider.script(Reply(content=["一", "二", "三", "四"] * 10, tokens_per_second=40))
    chinese = _socket(conversation, headers=[(b"accept-language", ZH.encode())])
    english = _socket(conversation, headers=[])
    assert await chinese.connect() and await english.connect()
    await english.drain(0.2)
    await chinese.say("数到四", "k1")
    await chinese.read_until(
        lambda page: bool(page.last()) and page.last().status == MessageStatus.STREAMING
    )
    await english.read_until(
        lambda page: bool(page.last()) and page.last().status == MessageStatus.STREAMING
    )
    assert "正在生成…" in chinese.page.last().html
    assert "Writing…" in english.page.last().html
    await chinese.read_until_reply("complete")
    await english.read_until_reply("complete")
    zh_footer, en_footer = chinese.page.last().html, english.page.last().html
    assert "tokens/秒" in zh_footer and "首字" in zh_footer and "tokens/s" not in zh_footer
    assert "tokens/s" in en_footer and "first token" in en_footer and "秒" not in en_footer
    await chinese.close()
    await english.close()


@pytest.mark.django_db(transaction=True)
async def test_a_stopped_reply_reads_stopped_in_each_language(conversation, fake_provider):
    fake_provider.script(Reply(content=["word "] * 400, tokens_per_second=50))
    chinese = _socket(conversation, headers=[(b"accept-language", b"zh-hans")])
    english = _socket(conversation, headers=[(b"accept-language", b"en")])
    assert await chinese.connect() and await english.connect()
    await english.say("Go on", "k1")
    await english.read_until(lambda page: bool(page.last() and page.last().text))
    await english.send(action="stop")
    await chinese.read_until_reply("cancelled")
    await english.read_until_reply("cancelled")
    assert "已停止。" in chinese.page.last().html
    assert "Stopped." in english.page.last().html
    await chinese.close()
    await english.close()


def test_an_interrupted_reply_is_saved_in_english_and_shown_in_the_readers_language(
    logged_in, conversation
):
    *_, reply = thread(conversation, "Hello", "Hel")
    Message.objects.filter(pk=reply.pk).update(status=MessageStatus.STREAMING)
    with translation.override("zh-hans"):  # whoever ends it, the sentence saved is data
        services.reply_interrupt_orphan(reply_id=reply.id)
    reply.refresh_from_db()
    assert reply.error_text == INTERRUPTED_TEXT
    html = logged_in.get(f"/c/{conversation.uuid}/", HTTP_ACCEPT_LANGUAGE=ZH).content.decode()
    assert "服务器停止了生成，回复已中断。" in html and INTERRUPTED_TEXT not in html


# --- The catalogue ---------------------------------------------------------------------


def _read_po(path: Path) -> list[dict]:
    """The entries of a .po file: msgctxt, msgid, msgid_plural, msgstr[n], flags."""
    entries, entry, key = [], {}, None
    for line in [*path.read_text("utf-8").splitlines(), ""]:
        line = line.strip()
        if not line:
            if "msgid" in entry:
                entries.append(entry)
            entry, key = {}, None
        elif line.startswith("#~"):
            entry["obsolete"] = True
        elif line.startswith("#,"):
            entry["flags"] = {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            entry[key] += ast.literal_eval(line)
        else:
            key, value = line.split(" ", 1)
            key = "msgstr" if key == "msgstr[0]" else key  # Chinese has one plural form
            entry[key] = ast.literal_eval(value)
    return entries


def _messages() -> list[dict]:
    return [e for e in _read_po(CATALOGUE / "django.po") if e["msgid"] and not e.get("obsolete")]


def _key(entry: dict) -> tuple:
    return entry.get("msgctxt"), entry["msgid"], entry.get("msgid_plural")


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext")
def test_the_catalogue_holds_exactly_the_strings_the_code_marks(tmp_path):
    """`make messages` on a copy of the code: nothing to add to django.po, nothing stale."""
    root = Path(settings.BASE_DIR)
    skipped = {"var", "tests", "static", "test-artifacts", "node_modules"}
    for item in root.iterdir():
        if item.name.startswith((".", "bench")) or item.name in skipped:
            continue
        if item.is_dir():
            shutil.copytree(
                item, tmp_path / item.name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(item, tmp_path / item.name)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    fresh = {_key(e) for e in _read_po(tmp_path / CATALOGUE.relative_to(root) / "django.po")}
    committed = {_key(e) for e in _read_po(CATALOGUE / "django.po") if not e.get("obsolete")}
    assert not fresh - committed, f"new strings are missing from django.po ({RERUN})"
    assert not committed - fresh, f"django.po holds strings no longer in the code ({RERUN})"


def test_every_interface_string_has_a_chinese_translation():
    missing = [e["msgid"] for e in _messages() if not e["msgstr"] or "fuzzy" in e.get("flags", ())]
    assert not missing, f"untranslated or fuzzy in django.po ({RERUN}): {missing}"


def test_translations_keep_every_placeholder():
    placeholder = re.compile(r"%(?:\(\w+\))?[sdr%]")
    wrong = [
        e["msgid"]
        for e in _messages()
        if sorted(placeholder.findall(e["msgid"])) != sorted(placeholder.findall(e["msgstr"]))
    ]
    assert not wrong, f"placeholders differ between msgid and msgstr: {wrong}"


def test_the_committed_mo_matches_the_po():
    with (CATALOGUE / "django.mo").open("rb") as compiled:
        catalogue = gettext.GNUTranslations(compiled)._catalog
    expected = {}
    for e in _messages():
        msgid = f"{e['msgctxt']}\x04{e['msgid']}" if "msgctxt" in e else e["msgid"]
        if "msgid_plural" in e:
            expected[(msgid, 0)] = e["msgstr"]
        else:
            expected[msgid] = e["msgstr"]
    compiled = {k: v for k, v in catalogue.items() if k != ""}
    assert compiled == expected, f"django.mo is stale: {RERUN}"


def test_the_language_names_show_in_their_own_language():
    assert dict(settings.LANGUAGES) == {"en": "English", "zh-hans": "简体中文"}
