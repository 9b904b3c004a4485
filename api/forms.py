from django import forms
from django.utils.translation import gettext_lazy


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=80, strip=True)


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text=gettext_lazy(
            "A chatsite JSON export, or an export from ChatGPT, Claude or Open WebUI."
        )
    )
    # Set by the "Check first" button: count, write nothing.
    dry_run = forms.BooleanField(required=False)
