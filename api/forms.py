from django import forms


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=80, strip=True)


class ImportForm(forms.Form):
    file = forms.FileField(help_text="A chatsite JSON export or ChatGPT's conversations.json.")
