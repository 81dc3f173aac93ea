"""Build the Grafana dashboards (deploy/grafana/dashboards/*.json) from the compact spec below.

    python deploy/grafana/build.py          # rewrite the JSON files
    python deploy/grafana/build.py --check  # exit 1 if they are not up to date

Every query is PromQL over metrics that tests/ops/test_grafana.py checks against the app's real
/metrics scrape or deploy/prometheus/external_metrics.txt, and through promtool.
"""

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"

# title -> list of panels: (title, unit, [(legend, PromQL)])
DASHBOARDS = {
    "system": (
        "Sistema",
        [
            ("Targets up", "short", [("{{job}} {{service}} {{colour}} {{instance}}", "up")]),
            (
                "Disco libre",
                "percentunit",
                [
                    (
                        "{{mountpoint}}",
                        'node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"}'
                        ' / node_filesystem_size_bytes{fstype!~"tmpfs|overlay"}',
                    )
                ],
            ),
            ("Workers de Celery", "short", [("arriba", "sum(celery_worker_up)")]),
            (
                "Réplicas por servicio de workers",
                "short",
                [("{{service}} {{colour}}", 'sum by (service, colour) (up{job="worker"})')],
            ),
            (
                "Workers por cola",
                "short",
                [("{{queue_name}}", "max by (queue_name) (celery_active_worker_count)")],
            ),
            (
                "Edad del latido del beat",
                "s",
                [("segundos", "max(ops_beat_heartbeat_age_seconds)")],
            ),
        ],
    ),
    "web": (
        "Web",
        [
            (
                "p95 por color",
                "s",
                [
                    (
                        "{{service}}",
                        "histogram_quantile(0.95, sum by (le, service) (rate("
                        'traefik_service_request_duration_seconds_bucket{service=~"app-.*"}'
                        "[$__rate_interval])))",
                    )
                ],
            ),
            (
                "Solicitudes por color y código",
                "reqps",
                [
                    (
                        "{{service}} {{code}}",
                        "sum by (service, code) (rate("
                        'traefik_service_requests_total{service=~"app-.*"}[$__rate_interval]))',
                    )
                ],
            ),
            (
                "p95 por vista",
                "s",
                [
                    (
                        "{{view}}",
                        "histogram_quantile(0.95, sum by (le, view) (rate("
                        "django_http_requests_latency_seconds_by_view_method_bucket"
                        "[$__rate_interval])))",
                    )
                ],
            ),
            (
                "Respuestas 5xx por vista",
                "reqps",
                [
                    (
                        "{{view}}",
                        "sum by (view) (rate("
                        "django_http_responses_total_by_status_view_method_total"
                        '{status=~"5.."}[$__rate_interval]))',
                    )
                ],
            ),
        ],
    ),
    "dte": (
        "DTE y SII",
        [
            (
                "Documentos por estado",
                "short",
                [("{{status}}", "sum by (status) (max by (tipo, status) (dte_documents))")],
            ),
            (
                "Sobres esperando al SII",
                "short",
                [("{{status}}", "max by (status) (dte_sii_queue_envelopes)")],
            ),
            (
                "Llamadas al SII por resultado",
                "reqps",
                [
                    (
                        "{{operation}} {{outcome}}",
                        "sum by (operation, outcome) (rate(sii_requests_total[$__rate_interval]))",
                    )
                ],
            ),
            (
                "p95 del SII por operación",
                "s",
                [
                    (
                        "{{operation}}",
                        "histogram_quantile(0.95, sum by (le, operation) "
                        "(rate(sii_request_seconds_bucket[$__rate_interval])))",
                    )
                ],
            ),
            (
                "Folios restantes",
                "short",
                [("{{company}} tipo {{tipo}}", "min by (company, tipo) (dte_caf_folios_left)")],
            ),
            (
                "Días de certificado",
                "d",
                [("{{company}}", "min by (company) (dte_certificate_days_left)")],
            ),
        ],
    ),
    "ai": (
        "Revisión con IA",
        [
            (
                "Llamadas por resultado",
                "reqps",
                [
                    (
                        "{{kind}} {{outcome}}",
                        "sum by (kind, outcome) (rate(ai_calls_total[$__rate_interval]))",
                    )
                ],
            ),
            (
                "Latencia p95",
                "s",
                [
                    (
                        "{{kind}}",
                        "histogram_quantile(0.95, sum by (le, kind) "
                        "(rate(ai_call_seconds_bucket[$__rate_interval])))",
                    )
                ],
            ),
            (
                "Tokens",
                "short",
                [("{{direction}}", "sum by (direction) (rate(ai_tokens_total[$__rate_interval]))")],
            ),
            ("Costo estimado hoy (USD)", "currencyUSD", [("USD", "max(ai_cost_usd_today)")]),
        ],
    ),
    "database": (
        "Base de datos",
        [
            (
                "Conexiones / máximo",
                "percentunit",
                [
                    (
                        "uso",
                        "sum(pg_stat_activity_count) / max(pg_settings_max_connections)",
                    )
                ],
            ),
            (
                "Conexiones por estado",
                "short",
                [("{{state}}", "sum by (state) (pg_stat_activity_count)")],
            ),
            (
                "Escrituras del ORM",
                "ops",
                [
                    (
                        "{{model}}",
                        "sum by (model) (rate(django_model_inserts_total[$__rate_interval]))",
                    )
                ],
            ),
        ],
    ),
}


def dashboard(uid: str, title: str, panels) -> dict:
    built = []
    for n, (panel_title, unit, queries) in enumerate(panels):
        built.append(
            {
                "id": n + 1,
                "type": "timeseries",
                "title": panel_title,
                "datasource": {"type": "prometheus", "uid": "prometheus"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (n % 2), "y": 8 * (n // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {
                        "refId": chr(ord("A") + i),
                        "expr": expr,
                        "legendFormat": legend,
                        "datasource": {"type": "prometheus", "uid": "prometheus"},
                    }
                    for i, (legend, expr) in enumerate(queries)
                ],
            }
        )
    return {
        "uid": f"facturacion-{uid}",
        "title": f"Facturación · {title}",
        "tags": ["facturacion"],
        "timezone": "America/Santiago",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "panels": built,
    }


def render() -> dict[str, str]:
    return {
        f"{uid}.json": json.dumps(dashboard(uid, title, panels), ensure_ascii=False, indent=2)
        + "\n"
        for uid, (title, panels) in DASHBOARDS.items()
    }


def main() -> int:
    files = render()
    if "--check" in sys.argv:
        stale = [
            n
            for n, text in files.items()
            if not (OUT / n).is_file() or (OUT / n).read_text() != text
        ]
        if stale:
            print(f"out of date: {', '.join(stale)} (run python deploy/grafana/build.py)")
            return 1
        return 0
    OUT.mkdir(exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
