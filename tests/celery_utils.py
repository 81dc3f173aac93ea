import os

from kombu import pools


def use_broker(app, url: str) -> str:
    """Send this process's tasks to `url`. Celery reads CELERY_BROKER_URL from the environment
    before its own configuration, so both change. Returns the previous URL."""
    previous = os.environ.get("CELERY_BROKER_URL", "")
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    reset_pool(app)
    return previous


def reset_pool(app) -> None:
    """Forget the app's broker connections and producers (kombu keeps them in global pools),
    so that the next task goes to the broker now configured in app.conf."""
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
