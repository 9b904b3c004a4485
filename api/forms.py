from django import forms
from django.utils.translation import gettext_lazy


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=80, strip=True)


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text=gettext_lazy("A chatsite JSON export or ChatGPT's conversations.json.")
    )
