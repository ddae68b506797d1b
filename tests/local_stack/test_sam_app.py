"""load_sam_app: what the local stack reads out of a SAM template."""

from pathlib import Path

import pytest

from dev.local_stack.template import CODE_BUCKET, HttpRoute, SqsSource, TemplateError, load_sam_app
from tests.local_stack.conftest import TINY_TEMPLATE, write


def test_functions_get_globals_their_own_overrides_and_local_code_and_layer_folders(
    tiny_app_dir: Path,
) -> None:
    app = load_sam_app(tiny_app_dir / "template.yaml")

    api, worker = app.functions["ApiFunction"], app.functions["WorkerFunction"]
    assert (api.handler, api.timeout_s, api.memory_mb) == ("app.handler", 5, 256)
    assert (worker.timeout_s, worker.memory_mb) == (4, 1024)  # Timeout is a Ref to a parameter's default
    assert api.code_dir == tiny_app_dir / "functions" / "api"
    assert worker.code_dir == tiny_app_dir / "functions" / "worker"
    assert api.layer_dirs == worker.layer_dirs == (tiny_app_dir / "layers" / "shared",)
    assert app.layer_dirs == (tiny_app_dir / "layers" / "shared",)


def test_parameter_values_given_to_load_reach_function_settings(tiny_app_dir: Path) -> None:
    app = load_sam_app(tiny_app_dir / "template.yaml", {"WorkerTimeout": "9"})

    assert app.functions["WorkerFunction"].timeout_s == 9


def test_every_code_location_becomes_its_own_placeholder_object_in_the_transformed_template(
    tiny_app_dir: Path,
) -> None:
    app = load_sam_app(tiny_app_dir / "template.yaml")

    resources = app.cloudformation["Resources"]
    assert resources["ApiFunction"]["Properties"]["Code"] == {
        "S3Bucket": CODE_BUCKET,
        "S3Key": "ApiFunction.zip",
    }
    layer = next(r for r in resources.values() if r["Type"] == "AWS::Lambda::LayerVersion")
    assert layer["Properties"]["Content"] == {"S3Bucket": CODE_BUCKET, "S3Key": "SharedLayer.zip"}
    assert app.code_dirs["SharedLayer.zip"] == tiny_app_dir / "layers" / "shared"
    assert str(tiny_app_dir) not in str(app.cloudformation)


def test_the_original_template_is_kept_untouched(tiny_app_dir: Path) -> None:
    app = load_sam_app(tiny_app_dir / "template.yaml")

    assert app.template["Resources"]["ApiFunction"]["Properties"]["CodeUri"] == "functions/api/"


def test_http_api_events_become_routes_with_upper_case_methods(tiny_app_dir: Path) -> None:
    app = load_sam_app(tiny_app_dir / "template.yaml")

    assert set(app.routes) == {
        HttpRoute("GET", "/items/{item_id}", "ApiFunction"),
        HttpRoute("POST", "/items", "ApiFunction"),
        HttpRoute("ANY", "/{proxy+}", "ApiFunction"),
    }
    assert HttpRoute("ANY", "/{proxy+}", "ApiFunction").route_key == "ANY /{proxy+}"


def test_sqs_events_become_sources_with_their_batch_settings(tiny_app_dir: Path) -> None:
    app = load_sam_app(tiny_app_dir / "template.yaml")

    assert app.sqs_sources == [
        SqsSource(
            function="WorkerFunction",
            queue="JobsQueue",
            batch_size=5,
            report_batch_item_failures=True,
            maximum_batching_window_s=0,
            maximum_concurrency=3,
        )
    ]


def test_an_http_api_event_without_path_and_method_is_the_default_route(tmp_path: Path) -> None:
    template = TINY_TEMPLATE.replace(
        "CreateItem: {Type: HttpApi, Properties: {Path: /items, Method: POST}}", "CatchAll: {Type: HttpApi}"
    )
    write(tmp_path / "template.yaml", template)

    app = load_sam_app(tmp_path / "template.yaml")

    default = HttpRoute("ANY", "$default", "ApiFunction")
    assert default in app.routes
    assert default.route_key == "$default"


def test_a_code_location_in_s3_is_refused_because_nothing_local_could_run(tmp_path: Path) -> None:
    write(
        tmp_path / "template.yaml",
        TINY_TEMPLATE.replace("CodeUri: functions/api/", "CodeUri: s3://bucket/api.zip"),
    )

    with pytest.raises(TemplateError, match=r"ApiFunction: CodeUri must be a local folder"):
        load_sam_app(tmp_path / "template.yaml")


def test_a_function_that_is_not_python_is_refused(tmp_path: Path) -> None:
    template = TINY_TEMPLATE.replace(
        "CodeUri: functions/worker/", "CodeUri: functions/worker/\n      Runtime: nodejs22.x"
    )
    write(tmp_path / "template.yaml", template)

    with pytest.raises(TemplateError, match=r"WorkerFunction: only Python functions run locally"):
        load_sam_app(tmp_path / "template.yaml")


def test_the_same_route_twice_is_refused_as_the_sam_transform_refuses_it(tmp_path: Path) -> None:
    template = TINY_TEMPLATE.replace(
        'Anything: {Type: HttpApi, Properties: {Path: "/{proxy+}", Method: ANY}}',
        "Again: {Type: HttpApi, Properties: {Path: /items, Method: post}}",
    )
    write(tmp_path / "template.yaml", template)

    with pytest.raises(TemplateError, match=r"method 'post' defined multiple times for path '/items'"):
        load_sam_app(tmp_path / "template.yaml")


def test_an_sqs_event_on_a_queue_outside_the_template_is_refused(tmp_path: Path) -> None:
    template = TINY_TEMPLATE.replace(
        "Queue: !GetAtt JobsQueue.Arn", "Queue: arn:aws:sqs:us-east-1:123456789012:elsewhere"
    )
    write(tmp_path / "template.yaml", template)

    with pytest.raises(TemplateError, match=r"WorkerFunction.Jobs: Queue must be !GetAtt"):
        load_sam_app(tmp_path / "template.yaml")
