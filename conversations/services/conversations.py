"""Conversations themselves: creation, settings and the user's saved personas."""

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext

from conversations import user_events
from conversations.errors import ValidationFailed
from conversations.models import ChatModel, Conversation, Persona
from conversations.providers import catalogue, profiles
from conversations.services.sidebar import conversation_announce_if_moving_up


def conversation_create(
    *,
    owner: User,
    chat_model: ChatModel | None = None,
    title: str = "",
    system_prompt: str = "",
    thinking: bool = False,
    json_mode: bool = False,
) -> Conversation:
    """A new conversation; `thinking` and `json_mode` are the new-chat page's switches,
    kept where the model honours them."""
    if chat_model is None:
        chat_model = catalogue.default_chat_model()
    thinks, json = profiles.honoured_switches(chat_model, thinking=thinking, json_mode=json_mode)
    conversation = Conversation.objects.create(
        owner=owner,
        chat_model=chat_model,
        title=title[:200],
        system_prompt=system_prompt,
        recall_enabled=settings.RECALL_DEFAULT_ON,
        thinking_enabled=thinks,
        json_mode=json,
    )
    _tell_owner(conversation, user_events.Change.CREATED)
    return conversation


def _tell_owner(conversation: Conversation, change: user_events.Change) -> None:
    user_events.conversation_changed(
        user_id=conversation.owner_id, conversation_uuid=conversation.uuid, change=change
    )


def conversation_discard_unused(*, conversation: Conversation) -> bool:
    """Delete a conversation that has no message yet (its first one was refused, so the
    sidebar keeps no empty "New chat"); one with messages is left alone. Whether it went."""
    deleted, _ = Conversation.objects.filter(pk=conversation.pk, messages__isnull=True).delete()
    if deleted:
        _tell_owner(conversation, user_events.Change.DELETED)
    return bool(deleted)


@dataclass
class GenerationSettings:
    """A conversation's parameters as the user set them (None: the model's default)."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    # The two switches beside the composer (conversation_set_switches); None: as they are.
    thinking_enabled: bool | None = None
    thinking_budget: int | None = None
    json_mode: bool | None = None
    # Earlier turns retrieved into each request (recall); not a model parameter, but set
    # with them in the conversation's settings.
    recall_enabled: bool = True


def _check_range(label: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise ValidationFailed(
            gettext("%(label)s must be between %(low)s and %(high)s (got %(value)s).")
            % {"label": label, "low": f"{low:g}", "high": f"{high:g}", "value": f"{value:g}"}
        )


def _validated(chat_model: ChatModel, params: GenerationSettings) -> GenerationSettings:
    """The settings this model can take; a clear refusal for anything out of its range.
    Switches the model cannot honour (thinking, JSON mode) are turned off, not refused:
    the form does not offer them for such a model."""
    _check_range(gettext("Temperature"), params.temperature, *profiles.TEMPERATURE_RANGE)
    _check_range(gettext("Top p"), params.top_p, *profiles.TOP_P_RANGE)
    _check_range(gettext("Max tokens"), params.max_tokens, 1, chat_model.max_output)
    stop = [s for s in params.stop if s]
    if len(stop) > profiles.MAX_STOP_SEQUENCES:
        raise ValidationFailed(
            gettext("Use at most %(limit)s stop sequences (got %(count)s).")
            % {"limit": profiles.MAX_STOP_SEQUENCES, "count": len(stop)}
        )
    if any(len(s) > profiles.MAX_STOP_LENGTH for s in stop):
        raise ValidationFailed(
            gettext("A stop sequence can be at most %(limit)s characters long.")
            % {"limit": profiles.MAX_STOP_LENGTH}
        )
    # A budget the provider ignores (Zhipu, DeepSeek, local servers) is neither offered
    # nor kept.
    controls = profiles.controls(chat_model)
    budgeted = controls.thinking_budget
    if budgeted:
        _check_range(
            gettext("Thinking budget"),
            params.thinking_budget,
            profiles.MIN_THINKING_BUDGET,
            chat_model.max_output,
        )
    return GenerationSettings(
        temperature=params.temperature,
        top_p=params.top_p,
        max_tokens=params.max_tokens,
        stop=stop,
        thinking_enabled=_honoured(params.thinking_enabled, controls.thinking_switch),
        thinking_budget=params.thinking_budget if budgeted else None,
        json_mode=_honoured(params.json_mode, controls.json_mode),
        recall_enabled=params.recall_enabled,
    )


def _honoured(wanted: bool | None, possible: bool) -> bool | None:
    return None if wanted is None else wanted and possible


# Left as they are when a settings form does not carry them (the composer sets them).
_SWITCHES = ("thinking_enabled", "json_mode")


def conversation_update_settings(
    *,
    conversation: Conversation,
    chat_model: ChatModel | None,
    system_prompt: str,
    parameters: GenerationSettings | None = None,
) -> Conversation:
    """Switch model, system prompt or parameters; later replies use them, earlier ones keep
    theirs (each reply records the model that wrote it). `parameters` None keeps the
    current ones."""
    if chat_model is None:
        raise ValidationFailed(gettext("Choose one of the available models."))
    fields = ["chat_model", "system_prompt", "updated_at"]
    if parameters is not None:
        checked = _validated(chat_model, parameters)
        given = {
            name: value
            for name, value in vars(checked).items()
            if not (name in _SWITCHES and value is None)
        }
        for name, value in given.items():
            setattr(conversation, name, value)
        fields += list(given)
    conversation.chat_model = chat_model
    conversation.system_prompt = system_prompt.strip()
    conversation_announce_if_moving_up(conversation)  # updated_at: it moves up
    conversation.save(update_fields=fields)
    # The model and the switches may have changed: its other pages' header and composer.
    user_events.controls_changed(user_id=conversation.owner_id, conversation_uuid=conversation.uuid)
    return conversation


def conversation_switch_model(
    *, conversation: Conversation, chat_model: ChatModel | None
) -> Conversation:
    """The model of the conversation's next replies (the header's switch); earlier replies
    keep theirs. The parameters stay: each request fits them to the new model's endpoint
    (profiles), and the settings then offer only what it honours."""
    if chat_model is None:
        raise ValidationFailed(gettext("Choose one of the available models."))
    conversation.chat_model = chat_model
    # updated_at too: a new chat starts on the model last used (selectors); so it moves up.
    conversation_announce_if_moving_up(conversation)
    conversation.save(update_fields=["chat_model", "updated_at"])
    user_events.controls_changed(user_id=conversation.owner_id, conversation_uuid=conversation.uuid)
    return conversation


def conversation_set_switches(
    *, conversation: Conversation, thinking: bool | None = None, json_mode: bool | None = None
) -> Conversation:
    """Turn thinking or JSON mode on or off for the next replies (the composer's switches);
    None leaves that one as it is. A switch the model cannot honour stays off, as the
    settings do; the switch is not offered for such a model."""
    thinks, json = profiles.honoured_switches(
        conversation.chat_model, thinking=bool(thinking), json_mode=bool(json_mode)
    )
    fields = []
    if thinking is not None:
        conversation.thinking_enabled = thinks
        fields.append("thinking_enabled")
    if json_mode is not None:
        conversation.json_mode = json
        fields.append("json_mode")
    if fields:
        conversation.save(update_fields=fields)
        user_events.controls_changed(
            user_id=conversation.owner_id, conversation_uuid=conversation.uuid
        )
    return conversation


@transaction.atomic
def persona_save(*, owner: User, name: str, system_prompt: str) -> Persona:
    """Save a system prompt under a name; the same name again replaces that preset."""
    name, system_prompt = name.strip(), system_prompt.strip()
    if not name or len(name) > 80:
        raise ValidationFailed(gettext("Give the persona a name of 1 to 80 characters."))
    if not system_prompt:
        raise ValidationFailed(gettext("Write a system prompt before saving it as a persona."))
    persona, _ = Persona.objects.update_or_create(
        owner=owner, name=name, defaults={"system_prompt": system_prompt}
    )
    return persona
