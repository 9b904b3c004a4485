"""Sizes are shown as people read them ("5 MB", not "5,242,880 bytes"), in one way
everywhere: limits in messages, the upload refused, the ZIP that unpacks too far."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template import Context, Template
from django.utils import translation

from conversations import services
from conversations.errors import ValidationFailed
from conversations.sizes import human_size


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (5 * 1024 * 1024, "5\xa0MB"),
        (256 * 1024 * 1024, "256\xa0MB"),
        (1536, "1.5\xa0KB"),
        (1024, "1\xa0KB"),
        (3 * 1024**3 + 1024**3 // 10, "3.1\xa0GB"),
        (900, "900\xa0bytes"),
        (1, "1\xa0byte"),
        (0, "0\xa0bytes"),
    ],
)
def test_a_size_is_shown_in_its_largest_unit_with_at_most_one_decimal(count, shown):
    assert human_size(count) == shown


def test_the_template_filter_shows_the_same():
    rendered = Template("{% load sizes %}{{ n|human_size }}").render(Context({"n": 5242880}))
    assert rendered == "5\xa0MB"


def test_the_chinese_interface_keeps_the_units():
    with translation.override("zh-hans"):
        assert human_size(5 * 1024 * 1024) == "5\xa0MB"


@pytest.mark.django_db
def test_an_image_over_the_limit_is_refused_naming_the_limit_in_mb(user, settings):
    settings.ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
    upload = SimpleUploadedFile("big.png", b"\x89PNG" + b"\x00" * 16, "image/png")
    upload.size = 6 * 1024 * 1024
    with pytest.raises(ValidationFailed) as refused:
        services.attachment_upload(owner=user, upload=upload)
    assert "the limit is 5\xa0MB" in refused.value.message
    assert "5242880" not in refused.value.message and "5,242,880" not in refused.value.message


@pytest.mark.django_db
def test_a_zip_that_unpacks_too_far_says_how_far_it_may(user, settings):
    settings.IMPORT_ZIP_MAX_UNPACKED_BYTES = 2048
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conversations.json", "[" + " " * 4096 + "]")
    with pytest.raises(services.ImportRejected) as refused:
        services.conversations_import(owner=user, data=buffer.getvalue())
    assert "(2\xa0KB)" in refused.value.message
