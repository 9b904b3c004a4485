from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm


class SignupForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)


class ConversationSettingsForm(forms.Form):
    model = forms.IntegerField()
    system_prompt = forms.CharField(required=False, max_length=20_000)


class NewConversationForm(forms.Form):
    model = forms.IntegerField(required=False)
    message = forms.CharField(required=False, max_length=100_000, strip=True)
    idempotency_key = forms.CharField(required=False, max_length=64)
