"""The PDF type's parameters: `model` well-formed, and one of the models a deployment offers
when it builds the type with them."""

from __future__ import annotations

import pytest
from pyrsistent import freeze
from returns.result import Failure, Success

from jobkit import errors
from jobkit.jobtypes import pdf

OFFERED = frozenset({"gemini-3.1-pro-preview", "gemini-3.8-flash"})


def test_any_well_formed_model_is_accepted_without_an_allow_list() -> None:
    assert pdf.JOB_TYPE.validate_params({"model": "gemini-1.5-pro"}) == Success(
        freeze({"instructions": pdf.DEFAULT_INSTRUCTIONS, "model": "gemini-1.5-pro"})
    )


def test_an_offered_model_is_accepted() -> None:
    validate = pdf.job_type(models=OFFERED).validate_params
    assert isinstance(validate({"model": "gemini-3.8-flash"}), Success)
    assert isinstance(validate({}), Success)  # no model: the deployment's default


def test_a_model_not_offered_is_refused_naming_those_that_are() -> None:
    validate = pdf.job_type(models=OFFERED).validate_params
    assert validate({"model": "gemini-1.5-pro"}) == Failure(
        errors.invalid("model", "must be one of: gemini-3.1-pro-preview, gemini-3.8-flash")
    )


def test_the_allow_list_leaves_the_rest_of_the_type_alone() -> None:
    built = pdf.job_type(models=OFFERED)
    assert (built.name, built.pipeline, built.retry) == (
        pdf.JOB_TYPE.name,
        pdf.JOB_TYPE.pipeline,
        pdf.JOB_TYPE.retry,
    )
    assert pdf.job_type() is pdf.JOB_TYPE


def test_an_empty_allow_list_is_a_configuration_error() -> None:
    with pytest.raises(errors.ConfigurationError):
        pdf.job_type(models=frozenset())


def test_a_frozen_schema_is_measured_like_a_plain_one() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert isinstance(pdf.JOB_TYPE.validate_params(freeze({"schema": schema})), Success)
