"""Go text/template as Prometheus uses it, shared by rules and the Alertmanager."""

from watchkeeper.template.errors import (
    GoFuncError,
    TemplateError,
    TemplateExecError,
    TemplateParseError,
)
from watchkeeper.template.prometheus import (
    ALERT_TEMPLATE_DEFS,
    AlertTemplateData,
    TemplateSample,
    check_alert_template,
    expand_alert_template,
    expand_template,
    prometheus_funcs,
)
from watchkeeper.template.template import Template

__all__ = [
    "ALERT_TEMPLATE_DEFS",
    "AlertTemplateData",
    "GoFuncError",
    "Template",
    "TemplateError",
    "TemplateExecError",
    "TemplateParseError",
    "TemplateSample",
    "check_alert_template",
    "expand_alert_template",
    "expand_template",
    "prometheus_funcs",
]
