from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from conversations.services import GenerationSettings


class SignupForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)


class ConversationSettingsForm(forms.Form):
    # The header switches the model; a form without one keeps the conversation's.
    model = forms.IntegerField(required=False)
    system_prompt = forms.CharField(required=False, max_length=20_000)
    # A saved persona whose prompt replaces the one typed.
    persona = forms.IntegerField(required=False)
    # Sent by the full settings form: without it the parameters below are left as they are.
    parameters = forms.BooleanField(required=False)
    temperature = forms.FloatField(required=False)
    top_p = forms.FloatField(required=False)
    max_tokens = forms.IntegerField(required=False)
    # One stop sequence per line; spaces are kept, they can matter.
    stop = forms.CharField(required=False, max_length=2_000, strip=False)
    thinking_enabled = forms.BooleanField(required=False)
    thinking_budget = forms.IntegerField(required=False)
    json_mode = forms.BooleanField(required=False)
    recall_enabled = forms.BooleanField(required=False)

    def generation_settings(self) -> GenerationSettings | None:
        data = self.cleaned_data
        if not data["parameters"]:
            return None
        return GenerationSettings(
            temperature=data["temperature"],
            top_p=data["top_p"],
            max_tokens=data["max_tokens"],
            stop=[line.rstrip("\r") for line in data["stop"].split("\n") if line.strip()],
            thinking_enabled=self._switch("thinking_enabled"),
            thinking_budget=data["thinking_budget"],
            json_mode=self._switch("json_mode"),
            recall_enabled=data["recall_enabled"],
        )

    def _switch(self, name: str) -> bool | None:
        """A switch the form carries; None when it does not: the composer's switches set
        thinking and JSON mode, and the settings popover leaves them as they are."""
        return self.cleaned_data[name] if name in self.data else None


class PersonaForm(forms.Form):
    persona_name = forms.CharField(max_length=80)
    system_prompt = forms.CharField(required=False, max_length=20_000)


class NewConversationForm(forms.Form):
    model = forms.IntegerField(required=False)
    message = forms.CharField(required=False, max_length=100_000, strip=True)
    idempotency_key = forms.CharField(required=False, max_length=64)

    def switches(self) -> tuple[bool, bool]:
        """The page's Think and JSON switches (hidden fields "on" or "off")."""
        return (
            switch_value(self.data.get("thinking")) is True,
            switch_value(self.data.get("json_mode")) is True,
        )

    def attachment_ids(self) -> list[str]:
        """The images the composer uploaded for the first message (its chips' ids)."""
        return self.data.getlist("attachments") if hasattr(self.data, "getlist") else []


# What a switch button of the composer sends: "on" or "off"; anything else changes nothing.
SWITCH_VALUES = {"on": True, "off": False}


def switch_value(value: str | None) -> bool | None:
    return SWITCH_VALUES.get(value or "")
