from chatsite.celery import app as celery_app
