"""The admin's own pages, kept as strings beside SQLAdmin's templates (no package data)."""

from __future__ import annotations

from jinja2 import BaseLoader, ChoiceLoader, DictLoader
from sqladmin.templating import Jinja2Templates

__all__ = ["LOGOUT_TEMPLATE", "TEST_RESULTS_TEMPLATE", "install_templates"]

TEST_RESULTS_TEMPLATE = "modelyard/test_results.html"
LOGOUT_TEMPLATE = "modelyard/logout.html"

_TEMPLATES = {
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
    loaders: list[BaseLoader] = [DictLoader(_TEMPLATES)]
    if templates.env.loader is not None:
        loaders.append(templates.env.loader)
    templates.env.loader = ChoiceLoader(loaders)
