"""Read a SAM template into what the local stack runs: functions, HTTP routes and SQS sources.

The template is transformed with samtranslator, as CloudFormation would, so
Globals, implicit roles and policies come out as they will on AWS. Code
locations are swapped for placeholder S3 objects first (moto cannot read local
folders); the local folder behind every placeholder is remembered here. Routes
and SQS sources are read from the functions' events as written: moto creates no
HTTP API and the local stack replaces the event source mappings.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template
from samtranslator.yaml_helper import yaml_parse

REPO_ROOT = Path(__file__).resolve().parents[2]  # dev/local_stack/template.py

CODE_BUCKET = "pushlane-code"
DEFAULT_REGION = "us-east-1"

# The managed policies SAM attaches by itself (logs, X-Ray, SQS polling). The
# transform asks for this map only when a template names a managed policy.
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSLambdaSQSQueueExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
}

# Lambda's own defaults, for functions that set neither the property nor a Global.
_LAMBDA_DEFAULT_TIMEOUT_S = 3
_LAMBDA_DEFAULT_MEMORY_MB = 128


class TemplateError(ValueError):
    """The template uses something the local stack cannot run."""


@dataclass(frozen=True)
class HttpRoute:
    """One HttpApi event: a method ("GET", ..., or "ANY") and a path as written in the template."""

    method: str
    path: str
    function: str

    @property
    def route_key(self) -> str:
        """The route key API Gateway puts in events: "GET /v1/apps/{app_id}", or "$default"."""
        if self.path == "$default":
            return "$default"
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class SqsSource:
    """One SQS event of a function (what becomes an AWS::Lambda::EventSourceMapping)."""

    function: str
    queue: str
    batch_size: int
    report_batch_item_failures: bool
    maximum_batching_window_s: int
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency: batches in flight at most


@dataclass(frozen=True)
class FunctionSpec:
    """A function as it will be deployed: Globals applied, code and layers as local folders."""

    logical_id: str
    code_dir: Path
    handler: str
    timeout_s: int
    memory_mb: int
    layer_dirs: tuple[Path, ...]


@dataclass
class SamApp:
    """A SAM template read for local running."""

    template: dict[str, Any]
    cloudformation: dict[str, Any]
    functions: dict[str, FunctionSpec]
    routes: list[HttpRoute]
    sqs_sources: list[SqsSource]
    code_dirs: dict[str, Path] = field(default_factory=dict)
    """Placeholder S3 key → the local folder it stands for."""

    @property
    def layer_dirs(self) -> tuple[Path, ...]:
        """Every layer folder any function uses, each once, in first-use order."""
        seen: dict[Path, None] = {}
        for spec in self.functions.values():
            seen.update(dict.fromkeys(spec.layer_dirs))
        return tuple(seen)


class _ManagedPolicyLoader:
    """What samtranslator calls instead of listing policies through IAM."""

    def load(self) -> dict[str, str]:
        return dict(MANAGED_POLICIES)


def load_sam_app(
    template_path: Path = REPO_ROOT / "template.yaml",
    parameters: Mapping[str, str] = {},
    *,
    region: str | None = None,
) -> SamApp:
    """Parse and transform a SAM template; list its functions, HTTP routes and SQS sources.

    ``parameters`` are template parameter values; ones left out keep their
    defaults (a parameter without a default stays an unresolved Ref, which is
    fine until the stack is deployed). ``region`` defaults to the boto3
    session's, else us-east-1.
    """
    template = yaml_parse(template_path.read_text(encoding="utf-8"))
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{template_path} has no Resources")
    sam = copy.deepcopy(template)
    code_dirs = _replace_code_locations(sam, template_path.parent)
    cloudformation = _transform(sam, parameters, region or boto3.session.Session().region_name or DEFAULT_REGION)
    parameter_values = _parameter_values(template, parameters)
    return SamApp(
        template=template,
        cloudformation=cloudformation,
        functions=_function_specs(cloudformation, code_dirs, parameter_values),
        routes=_http_routes(template),
        sqs_sources=_sqs_sources(template, parameter_values),
        code_dirs=code_dirs,
    )


def _replace_code_locations(sam: dict[str, Any], base_dir: Path) -> dict[str, Path]:
    """Point every CodeUri / ContentUri at its own placeholder object; return key → local folder.

    One object per resource (not one shared placeholder) so the transformed
    template still says which folder each function and layer comes from.
    """
    global_code_uri = sam.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    code_dirs: dict[str, Path] = {}
    for logical_id, resource in sam["Resources"].items():
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function":
            prop = "CodeUri"
        elif kind == "AWS::Serverless::LayerVersion":
            prop = "ContentUri"
        else:
            continue
        properties = resource.setdefault("Properties", {})
        uri = properties.get(prop, global_code_uri if prop == "CodeUri" else None)
        if not isinstance(uri, str) or uri.startswith("s3://"):
            raise TemplateError(f"{logical_id}: {prop} must be a local folder to run locally, got {uri!r}")
        key = f"{logical_id}.zip"
        code_dirs[key] = (base_dir / uri).resolve()
        properties[prop] = f"s3://{CODE_BUCKET}/{key}"
    return code_dirs


def _transform(sam: dict[str, Any], parameters: Mapping[str, str], region: str) -> dict[str, Any]:
    """samtranslator's ``transform()``, with the region given rather than read from the environment."""
    parameter_values: dict[str, Any] = dict(parameters)
    to_py27_compatible_template(sam, parameter_values)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    try:
        transformed = translator.translate(
            sam, parameter_values=parameter_values, get_managed_policy_map=_ManagedPolicyLoader().load
        )
    except InvalidDocumentException as error:
        raise TemplateError(f"the SAM transform rejected the template: {error}") from error
    finally:
        translator.metrics.publish()  # to nowhere; unpublished metrics make it warn when collected
    result: dict[str, Any] = undo_mark_unicode_str_in_template(transformed)
    return result


def _parameter_values(template: dict[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: spec["Default"]
        for name, spec in template.get("Parameters", {}).items()
        if isinstance(spec, dict) and "Default" in spec
    }
    values.update(parameters)
    return values


def _maximum_concurrency(properties: Mapping[str, Any], parameter_values: Mapping[str, Any], where: str) -> int | None:
    scaling = properties.get("ScalingConfig") or {}
    if "MaximumConcurrency" not in scaling:
        return None
    return _resolve_int(scaling["MaximumConcurrency"], parameter_values, f"{where} ScalingConfig.MaximumConcurrency")


def _resolve_int(value: Any, parameter_values: Mapping[str, Any], what: str) -> int:
    """An integer property, possibly a Ref to a parameter (Timeout: !Ref FunctionTimeout)."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameter_values:
        value = parameter_values[value["Ref"]]
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TemplateError(f"{what} must be a number or a Ref to a parameter, got {value!r}") from None


def _placeholder_dir(code: Any, code_dirs: Mapping[str, Path], what: str) -> Path:
    if isinstance(code, dict) and code.get("S3Bucket") == CODE_BUCKET and code.get("S3Key") in code_dirs:
        return code_dirs[code["S3Key"]]
    raise TemplateError(f"{what} has no local code folder (got {code!r})")


def _function_specs(
    cloudformation: dict[str, Any], code_dirs: Mapping[str, Path], parameter_values: Mapping[str, Any]
) -> dict[str, FunctionSpec]:
    resources: dict[str, Any] = cloudformation["Resources"]
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        properties = resource["Properties"]
        runtime = str(properties.get("Runtime", ""))
        if not runtime.startswith("python"):
            raise TemplateError(f"{logical_id}: only Python functions run locally, got runtime {runtime!r}")
        layer_dirs = []
        for layer in properties.get("Layers", []):
            # A layer given as an ARN lives in someone's AWS account: nothing local to load.
            if isinstance(layer, dict) and set(layer) == {"Ref"} and layer["Ref"] in resources:
                content = resources[layer["Ref"]]["Properties"].get("Content")
                layer_dirs.append(_placeholder_dir(content, code_dirs, f"layer {layer['Ref']}"))
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=_placeholder_dir(properties.get("Code"), code_dirs, f"function {logical_id}"),
            handler=str(properties["Handler"]),
            timeout_s=_resolve_int(
                properties.get("Timeout", _LAMBDA_DEFAULT_TIMEOUT_S),
                parameter_values,
                f"{logical_id} Timeout",
            ),
            memory_mb=_resolve_int(
                properties.get("MemorySize", _LAMBDA_DEFAULT_MEMORY_MB),
                parameter_values,
                f"{logical_id} MemorySize",
            ),
            layer_dirs=tuple(layer_dirs),
        )
    return specs


def _function_events(template: dict[str, Any], event_type: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(function logical id, event name, event properties) for every event of one type."""
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        events = resource.get("Properties", {}).get("Events") or {}
        for name, event in events.items():
            if event.get("Type") == event_type:
                found.append((logical_id, name, event.get("Properties") or {}))
    return found


def _http_routes(template: dict[str, Any]) -> list[HttpRoute]:
    routes: dict[str, HttpRoute] = {}
    for function, name, properties in _function_events(template, "HttpApi"):
        path, method = properties.get("Path"), properties.get("Method")
        if path is None and method is None:
            route = HttpRoute(method="ANY", path="$default", function=function)  # SAM's catch-all route
        elif isinstance(path, str) and isinstance(method, str):
            route = HttpRoute(method=method.upper(), path=path, function=function)
        else:
            raise TemplateError(f"{function}.{name}: HttpApi Path and Method must be plain strings")
        # The transform refuses duplicates within one API; all APIs share the one local gateway.
        if route.route_key in routes:
            raise TemplateError(f"{function}.{name}: route {route.route_key} is defined twice")
        routes[route.route_key] = route
    return list(routes.values())


def _queue_logical_id(queue: Any, where: str) -> str:
    """The queue behind ``!GetAtt Queue.Arn``: the local stack consumes only queues it creates."""
    if isinstance(queue, dict) and "Fn::GetAtt" in queue:
        target = queue["Fn::GetAtt"]
        parts = target if isinstance(target, list) else str(target).split(".", 1)
        if len(parts) == 2 and parts[1] == "Arn":
            return str(parts[0])
    raise TemplateError(f"{where}: Queue must be !GetAtt <queue in this template>.Arn, got {queue!r}")


def _sqs_sources(template: dict[str, Any], parameter_values: Mapping[str, Any]) -> list[SqsSource]:
    sources = []
    for function, name, properties in _function_events(template, "SQS"):
        if properties.get("Enabled", True) is False:
            continue
        where = f"{function}.{name}"
        sources.append(
            SqsSource(
                function=function,
                queue=_queue_logical_id(properties.get("Queue"), where),
                batch_size=_resolve_int(properties.get("BatchSize", 10), parameter_values, f"{where} BatchSize"),
                report_batch_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
                maximum_batching_window_s=_resolve_int(
                    properties.get("MaximumBatchingWindowInSeconds", 0),
                    parameter_values,
                    f"{where} MaximumBatchingWindowInSeconds",
                ),
                maximum_concurrency=_maximum_concurrency(properties, parameter_values, where),
            )
        )
    return sources
