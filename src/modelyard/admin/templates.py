"""The admin's own pages, kept as strings beside SQLAdmin's templates (no package data).

``sqladmin/base.html`` and ``sqladmin/layout.html`` are replaced, so that every admin
page has the app's look: the app's colours and fonts (``/static/theme.css``, shared with
the app), its theme (``theme.js``, ``admin.js``, ``admin.css``; the toggle of
``common.js``), and a header with the way back
to the app. The stock templates stay reachable as ``stock/sqladmin/…``.
"""

from __future__ import annotations

from jinja2 import BaseLoader, ChoiceLoader, DictLoader, PrefixLoader
from sqladmin.templating import Jinja2Templates

__all__ = ["DASHBOARD_TEMPLATE", "LOGOUT_TEMPLATE", "TEST_RESULTS_TEMPLATE", "install_templates"]

TEST_RESULTS_TEMPLATE = "modelyard/test_results.html"
LOGOUT_TEMPLATE = "modelyard/logout.html"
DASHBOARD_TEMPLATE = "modelyard/dashboard.html"
#: Where SQLAdmin's own templates stay reachable (``stock/sqladmin/base.html``).
_STOCK = "stock"

_THEME_ICONS = (
    '<svg class="icon-moon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">'
    '<path fill="currentColor" d="M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8Z"/></svg>'
    '<svg class="icon-sun" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">'
    '<circle cx="12" cy="12" r="4.5" fill="currentColor"/><g stroke="currentColor" '
    'stroke-width="2" stroke-linecap="round"><path d="M12 2v2.5M12 19.5V22M2 12h2.5M19.5 '
    '12H22M4.9 4.9l1.8 1.8M17.3 17.3l1.8 1.8M4.9 19.1l1.8-1.8M17.3 6.7l1.8-1.8"/></g></svg>'
)

_BASE = """{% extends "stock/sqladmin/base.html" %}
{% block head_meta %}
{{ super() }}
<meta name="color-scheme" content="light dark">
<script src="/static/theme.js"></script>
<script src="/static/admin.js"></script>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
{% endblock %}
{% block head_css %}
{{ super() }}
<link rel="stylesheet" href="/static/theme.css">
<link rel="stylesheet" href="/static/admin.css">
{% endblock %}
{% block tail_js %}
{{ super() }}
<script src="/static/common.js"></script>
{% endblock %}
"""

_LAYOUT = (
    """{% extends "sqladmin/base.html" %}
{% from 'sqladmin/_macros.html' import menu_item, menu_category %}
{% block body %}
<a class="skip-link" href="#admin-main">Skip to content</a>
<header class="ma-topbar">
  <a class="ma-brand" href="{{ url_for('admin:index') }}"><span class="ma-brand-mark"
    aria-hidden="true">◆</span> modelyard <span class="ma-brand-tag">admin</span></a>
  <a class="ma-back" href="/" id="back-to-app"><span aria-hidden="true">←</span>
    Back to modelyard</a>
  <div class="ma-actions">
    <button type="button" class="ma-icon-button theme-toggle" data-theme-toggle
      aria-label="Switch theme" title="Switch theme">"""
    + _THEME_ICONS
    + """</button>
    {% if admin.authentication_backend %}
    <a href="{{ request.url_for('admin:logout') }}" class="ma-signout">Sign out</a>
    {% endif %}
  </div>
</header>
<div class="ma-shell">
  <nav class="ma-menu" id="navbar-menu" aria-label="Admin"
    data-sqladmin-menu="{{ admin.base_url }}">
    <ul class="navbar-nav">
      {% for item in admin._menu.items %}
      {% if item.type_ == "View" %}{{ menu_item(item, request) }}
      {% elif item.type_ == "Category" %}{{ menu_category(item, request) }}{% endif %}
      {% endfor %}
    </ul>
  </nav>
  <main class="ma-main" id="admin-main" tabindex="-1">
    {% block topbar %}{% endblock %}
    <div class="container-fluid">
      <div class="page-header d-print-none">
        {% block content_header %}
        <div class="row align-items-center">
          <div class="col">
            <h2 class="page-title">{{ title }}</h2>
            <div class="page-pretitle">{{ subtitle }}</div>
          </div>
        </div>
        {% endblock %}
      </div>
    </div>
    <div class="page-body flex-grow-1">
      <div class="container-fluid">
        <div class="row row-deck row-cards">
          {% block content %} {% endblock %}
          {% block flash %}
          {% include 'sqladmin/flash.html' %}
          {% endblock %}
          {% block secret_modal %}
          {% include 'sqladmin/secret_modal.html' %}
          {% endblock %}
        </div>
      </div>
    </div>
  </main>
</div>
{% endblock %}
"""
)

_DASHBOARD = """{% extends "sqladmin/layout.html" %}
{% block content_header %}
<div class="row align-items-center">
  <div class="col">
    <h2 class="page-title">Today</h2>
    <p class="ma-subtitle">{{ figures.day.isoformat() }} (UTC), from the usage records</p>
  </div>
</div>
{% endblock %}
{% block content %}
<div class="ma-dashboard" id="dashboard">
  <section class="ma-figures" aria-label="Today's figures">
    <div class="ma-figure" id="figure-requests">
      <p class="ma-figure-label">Requests</p>
      <p class="ma-figure-value">{{ count(figures.requests) }}</p>
      <p class="ma-figure-note">by {{ count(figures.users_today) }}
        {{ "user" if figures.users_today == 1 else "users" }}</p>
    </div>
    <div class="ma-figure" id="figure-cost">
      <p class="ma-figure-label">Cost</p>
      <p class="ma-figure-value">{{ usd(figures.cost_usd) }}</p>
      <p class="ma-figure-note">all providers</p>
    </div>
    <div class="ma-figure{{ ' ma-bad' if figures.errors else '' }}" id="figure-errors">
      <p class="ma-figure-label">Errors</p>
      <p class="ma-figure-value">{{ count(figures.errors) }}</p>
      <p class="ma-figure-note">{{ "%.1f" | format(figures.error_share * 100) }}% of requests
        (status not 2xx)</p>
    </div>
    <div class="ma-figure" id="figure-providers">
      <p class="ma-figure-label">Active providers</p>
      <p class="ma-figure-value">{{ count(figures.active_providers) }}</p>
      <p class="ma-figure-note">of {{ count(figures.providers) }}</p>
    </div>
    <div class="ma-figure" id="figure-users">
      <p class="ma-figure-label">Active users</p>
      <p class="ma-figure-value">{{ count(figures.active_users) }}</p>
      <p class="ma-figure-note">of {{ count(figures.users) }} accounts</p>
    </div>
  </section>
  <div class="card">
    <div class="card-header"><h3 class="card-title">Top models today</h3></div>
    {% if figures.top_models %}
    <div class="table-responsive" tabindex="0" role="region" aria-label="Top models today">
      <table class="table card-table table-vcenter" id="top-models">
        <thead><tr><th scope="col">Model</th><th scope="col" class="ma-number">Requests</th>
          <th scope="col" class="ma-number">Errors</th><th scope="col" class="ma-number">Cost</th>
        </tr></thead>
        <tbody>
          {% for row in figures.top_models %}
          <tr>
            <td class="ma-model">{{ row.model }}</td>
            <td class="ma-number">{{ count(row.requests) }}</td>
            <td class="ma-number">{{ count(row.errors) }}</td>
            <td class="ma-number">{{ usd(row.cost_usd) }}</td>
          </tr>
          {% endfor %}
        </tbody>
      </table>
    </div>
    {% else %}
    <div class="card-body"><p class="text-secondary mb-0">No requests yet today.</p></div>
    {% endif %}
    <div class="card-footer ma-links">
      <a href="{{ url_for('admin:list', identity='usage-record') }}">All usage records</a>
      <a href="{{ url_for('admin:list', identity='provider') }}">Providers</a>
      <a href="{{ url_for('admin:list', identity='user') }}">Users</a>
      <a href="{{ url_for('admin:list', identity='audit-log-entry') }}">Audit log</a>
    </div>
  </div>
  <div class="card">
    <div class="card-header"><h3 class="card-title">Default chat model</h3></div>
    <div class="card-body">
      <form method="post" action="{{ url_for('admin:default_chat_model') }}"
        class="ma-default-model">
        <label class="form-label" for="default-chat-model">What a new chat opens with
          (a user who cannot use it gets their first chat model)</label>
        <div class="ma-inline">
          <select class="form-select" id="default-chat-model" name="model">
            <option value="" {{ 'selected' if not default_chat_model }}>
              Each user's first chat model</option>
            {% if default_chat_model and default_chat_model not in chat_models %}
            <option value="{{ default_chat_model }}" selected>
              {{ default_chat_model }} (not usable by you)</option>
            {% endif %}
            {% for name in chat_models %}
            <option value="{{ name }}" {{ 'selected' if name == default_chat_model }}>
              {{ name }}</option>
            {% endfor %}
          </select>
          <button type="submit" class="btn btn-primary">Save</button>
        </div>
      </form>
    </div>
  </div>
</div>
{% endblock %}
"""

_TEMPLATES = {
    "sqladmin/base.html": _BASE,
    "sqladmin/layout.html": _LAYOUT,
    DASHBOARD_TEMPLATE: _DASHBOARD,
    TEST_RESULTS_TEMPLATE: """{% extends "sqladmin/layout.html" %}
{% block content %}
<div class="col-12">
  <div class="card">
    <div class="card-header"><h3 class="card-title">Connection test</h3></div>
    <div class="table-responsive">
      <table class="table card-table table-vcenter" id="test-results">
        <thead><tr><th>Provider</th><th>Result</th><th>Message</th><th>Latency</th></tr></thead>
        <tbody>
          {% for row in results %}
          <tr>
            <td>{{ row.name }}</td>
            <td class="result"><span class="badge {{ 'bg-success' if row.ok else 'bg-danger' }}
              text-light">{{ "ok" if row.ok else "failed" }}</span></td>
            <td>{{ row.message }}</td>
            <td>{{ "%.0f" | format(row.latency_ms) }} ms</td>
          </tr>
          {% endfor %}
        </tbody>
      </table>
    </div>
    <div class="card-footer"><a class="btn" href="{{ back_url }}">Back to the providers</a></div>
  </div>
</div>
{% endblock %}
""",
    LOGOUT_TEMPLATE: """{% extends "sqladmin/layout.html" %}
{% block content %}
<div class="col-12">
  <div class="card">
    <div class="card-body">
      <form method="post" action="/logout">
        <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
        <button type="submit" class="btn btn-primary">Sign out of modelyard</button>
        <a class="btn" href="{{ url_for('admin:index') }}">Cancel</a>
      </form>
    </div>
  </div>
</div>
{% endblock %}
""",
}


def install_templates(templates: Jinja2Templates) -> None:
    """Let ``templates`` find the pages above before SQLAdmin's own."""
    stock = templates.env.loader
    loaders: list[BaseLoader] = [DictLoader(_TEMPLATES)]
    if stock is not None:
        loaders += [PrefixLoader({_STOCK: stock}), stock]
    templates.env.loader = ChoiceLoader(loaders)
