"""Provider health incidents: opened when a model crosses a threshold over the alert window,
e-mailed once, closed when the condition clears.

The check runs after every reply (live/run.py) and whenever the admin's health page loads.
After a reply it must cost the reply nothing it would notice: at most one check per model
per CHECK_INTERVAL in each process (a failed reply checks at once), two aggregate queries
over the alert window, and never an exception; the e-mail is a background job.
"""

import logging
import math
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from conversations import background_jobs
from conversations.models import ChatModel, IncidentKind, ProviderIncident
from conversations.selectors import provider_health as health

log = logging.getLogger(__name__)

# Seconds between two checks of one model in one process, unless a reply failed.
CHECK_INTERVAL = 30.0
_checked_at: dict[int, float] = {}
_checked_at_lock = threading.Lock()


def provider_health_check(
    *, chat_model: ChatModel | None, force: bool = False
) -> list[ProviderIncident]:
    """Open and close `chat_model`'s incidents after its figures over the alert window;
    returns the incidents this check opened. Throttled per process unless `force` (a
    failed reply, the health page); logs and returns [] on any error."""
    if chat_model is None or not _due(chat_model.pk, force=force):
        return []
    try:
        conditions = health.provider_health_conditions([chat_model])
        incidents = health.provider_incidents_open([chat_model])
        return _apply(chat_model, conditions[chat_model.pk], incidents)
    except Exception:
        log.exception("the provider health check of model %s failed", chat_model.pk)
        return []


def provider_health_check_all() -> list[ProviderIncident]:
    """The check of every active model, and of any with an open incident (which may be
    inactive now): two aggregate queries for all of them. Returns the incidents opened."""
    models = list(
        ChatModel.objects.filter(Q(is_active=True) | Q(incidents__closed_at__isnull=True))
        .select_related("provider")
        .distinct()
    )
    if not models:
        return []
    conditions = health.provider_health_conditions(models)
    incidents = health.provider_incidents_open(models)
    opened = []
    for model in models:
        _due(model.pk, force=True)
        opened += _apply(model, conditions[model.pk], incidents)
    return opened


def _due(chat_model_id: int, *, force: bool) -> bool:
    now = time.monotonic()
    with _checked_at_lock:
        last = _checked_at.get(chat_model_id, -math.inf)
        if not force and now - last < CHECK_INTERVAL:
            return False
        _checked_at[chat_model_id] = now
        return True


def _apply(
    chat_model: ChatModel,
    conditions: list[health.Condition],
    incidents: dict[tuple[int, str], ProviderIncident],
) -> list[ProviderIncident]:
    opened = []
    for condition in conditions:
        incident = incidents.get((chat_model.pk, condition.kind))
        if incident is None and condition.crossed:
            if (new := _open(chat_model, condition)) is not None:
                opened.append(new)
        elif incident is not None and condition.cleared:
            _close(incident)
    return opened


def _open(chat_model: ChatModel, condition: health.Condition) -> ProviderIncident | None:
    """A new incident, its e-mail queued; None when another process opened it first."""
    try:
        # A savepoint: a lost race must not break a transaction around the check.
        with transaction.atomic():
            incident = ProviderIncident.objects.create(
                chat_model=chat_model,
                kind=condition.kind,
                opened_at=timezone.now(),
                value=condition.value or 0.0,
                threshold=condition.threshold,
                samples=condition.samples,
            )
    except IntegrityError:
        return None
    log.warning("provider health: %s %s crossed its threshold", chat_model, condition.kind)
    transaction.on_commit(_banner_changed)
    background_jobs.enqueue(
        background_jobs.EMAIL_PROVIDER_INCIDENT, provider_incident_email, incident_id=incident.pk
    )
    return incident


def _close(incident: ProviderIncident) -> None:
    closed = ProviderIncident.objects.filter(pk=incident.pk, closed_at__isnull=True).update(
        closed_at=timezone.now()
    )
    if closed:
        log.info("provider health: incident %s closed", incident.pk)
        transaction.on_commit(_banner_changed)


def _banner_changed() -> None:
    cache.delete(health.BANNER_CACHE_KEY)


def provider_incident_email(*, incident_id: int) -> bool:
    """The incident's one e-mail, to provider_health_recipients(); False when it was sent
    already, the incident is gone or nobody is there to tell. The send is claimed first
    (emailed_at), so a job run twice sends once."""
    incident = (
        ProviderIncident.objects.select_related("chat_model__provider")
        .filter(pk=incident_id)
        .first()
    )
    recipients = health.provider_health_recipients()
    if incident is None or incident.emailed_at is not None:
        return False
    if not recipients:
        log.warning("provider health: nobody to e-mail about incident %s", incident_id)
        return False
    claimed = ProviderIncident.objects.filter(pk=incident_id, emailed_at__isnull=True).update(
        emailed_at=timezone.now()
    )
    if not claimed:
        return False
    with translation.override(settings.LANGUAGE_CODE):
        subject, body = _email_text(incident)
    send_mail(subject, body, None, recipients)
    return True


def _email_text(incident: ProviderIncident) -> tuple[str, str]:
    model = incident.chat_model
    figures = {
        "provider": model.provider.name,
        "model": model.name,
        "value": incident.display(incident.value),
        "threshold": incident.display(incident.threshold),
        "samples": incident.samples,
        "minutes": settings.PROVIDER_HEALTH_ALERT_WINDOW // 60,
    }
    if incident.kind == IncidentKind.ERROR_RATE:
        what = gettext("error rate %(value)s (threshold %(threshold)s) over %(samples)s calls")
    else:
        what = gettext("TTFT p95 %(value)s (threshold %(threshold)s) over %(samples)s replies")
    what %= figures
    figures |= {"what": what, "url": reverse("admin:conversations_providerincident_changelist")}
    subject = gettext("[chatsite] %(provider)s / %(model)s: %(what)s") % figures
    body = (
        gettext(
            "%(provider)s / %(model)s is over its threshold: %(what)s in the last %(minutes)s "
            "minutes.\n\nThis is the only e-mail about this incident; staff see a banner in the "
            "app until it clears.\nProvider health: %(url)s\n"
        )
        % figures
    )
    return subject, body
