"""The FastAPI application factory: one app per call, nothing global."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from modelyard import __version__
from modelyard.accounts.login_throttle import LoginThrottle
from modelyard.admin import mount_admin
from modelyard.api.anthropic_errors import install_anthropic_errors
from modelyard.api.chat_fast_lane import ChatFastLane
from modelyard.api.errors import install_error_handlers
from modelyard.api.middleware import RequestContextMiddleware
from modelyard.api.middleware.metrics import HttpMetrics
from modelyard.api.routes import (
    admin_gateway_routes,
    admin_providers,
    admin_settings,
    api_tokens,
    auth,
    catalog,
    conversation_shares,
    conversation_titles,
    conversations,
    datasets,
    finetune,
    health,
    limits,
    me,
    trained_models,
    training,
    training_advice,
    usage,
    users,
    v1_completions,
    v1_messages,
    v1_openai,
    v1_responses,
    v2_llm,
)
from modelyard.api.state import AppState
from modelyard.config import Settings
from modelyard.db.engine import create_database
from modelyard.finetune.sync import start_finetune, stop_finetune
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.metrics import GatewayMetrics
from modelyard.gateway.redis_client import create_redis
from modelyard.gateway.service import Gateway
from modelyard.limits.enforcer import LimitEnforcer
from modelyard.providers.file_config import apply_config_file
from modelyard.providers.kinds import ProviderKind
from modelyard.providers.system_keys import load_system_keys
from modelyard.runtime_probes import (
    GcProbe,
    LoopLagProbe,
    freeze_startup_heap,
    young_threshold,
)
from modelyard.security.encryption import load_keyring
from modelyard.training.service import start_training, stop_training
from modelyard.ttl_cache import TTLCache
from modelyard.usage.journal import usage_journal
from modelyard.usage.metrics import UsageRecorderCollector
from modelyard.usage.recorder import UsageRecorder
from modelyard.web import pages

__all__ = ["create_app"]


#: In the order requests are matched (FastAPI tries routes one by one): the gateway's
#: endpoints first, so that a chat request is not compared with every other route.
ROUTERS = (
    v1_openai.router,
    v1_completions.router,
    v1_messages.router,
    v1_responses.router,
    v2_llm.router,
    health.router,
    auth.router,
    me.router,
    api_tokens.router,
    users.router,
    catalog.router,
    admin_providers.router,
    admin_gateway_routes.router,
    admin_settings.router,
    conversations.router,
    conversation_shares.router,
    conversation_titles.router,
    limits.router,
    usage.router,
    datasets.router,
    training.router,
    trained_models.router,
    training.models_router,
    training.train_router,
    training_advice.router,
    finetune.router,
    pages.router,
)


def create_app(
    settings: Settings | None = None,
    *,
    system_keys: dict[ProviderKind, list[str]] | None = None,
) -> FastAPI:
    """Build the application for ``settings`` (read from the environment when omitted).

    ``system_keys`` replaces the provider keys found in the environment and ``.env``.
    """
    settings = settings or Settings()
    keyring = load_keyring(settings)
    system_keys = load_system_keys() if system_keys is None else system_keys
    database = create_database(settings, keyring)
    registry = CollectorRegistry()
    upstream_http = UpstreamHttp()
    redis = create_redis(settings.redis_url) if settings.redis_url else None
    gateway = Gateway(
        settings,
        database,
        system_keys,
        metrics=GatewayMetrics(registry),
        http=upstream_http,
        redis=redis,
    )
    state = AppState(
        settings=settings,
        database=database,
        keyring=keyring,
        gateway=gateway,
        usage=UsageRecorder(
            database, flush_interval=settings.usage_flush_seconds, journal=usage_journal(settings)
        ),
        limits=LimitEnforcer(database, redis=redis, prefix=settings.redis_prefix),
        system_keys=system_keys,
        token_cache=TTLCache(ttl=settings.auth_cache_seconds),
        metrics_registry=registry,
        login_throttle=LoginThrottle(redis, settings.redis_prefix),
        upstream_http=upstream_http,
        redis=redis,
    )
    gc_probe, lag_probe = GcProbe(), LoopLagProbe()
    for collector in (UsageRecorderCollector(state.usage), gc_probe, lag_probe):
        state.metrics.add_computed(collector)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.config_file is not None:
            await apply_config_file(settings.config_file, state.database)
        await state.usage.start()
        await start_training(_app)
        await start_finetune(_app)
        if settings.gc_freeze:
            freeze_startup_heap()
        gc_probe.install()
        lag_probe.start()
        state.metrics.start()
        with young_threshold(settings.gc_young_threshold):
            yield
        await state.metrics.stop()
        await lag_probe.stop()
        gc_probe.uninstall()
        await stop_finetune(_app)
        await stop_training(_app)
        await state.aclose()

    telemetry = settings.opentelemetry
    app = FastAPI(
        title="modelyard",
        version=__version__,
        lifespan=lifespan,
        telemetry={"tracing": telemetry, "metrics": telemetry, "logs": telemetry},
    )
    app.state.modelyard = state
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    pages.mount_static(app)
    mount_admin(app, state)
    app.add_middleware(ChatFastLane, application=app)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=HttpMetrics(state.metrics_registry),
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    install_anthropic_errors(app)  # outermost: reshapes the middleware's refusals too
    return app
