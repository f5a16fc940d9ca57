"""Errors live in one module with one tree; configuration objects are immutable alike."""

from __future__ import annotations

import copy
import math
import pickle
import re
from pathlib import Path

import pytest

import hm_async
from hm_async import _config, _errors
from hm_async._config import Backoff, RateLimits, RequestOptions, Timeout


def test_settle_timeout_is_a_timeout_but_not_a_network_failure() -> None:
    err = hm_async.SettleTimeoutError("not settled", seconds=5.0, clearances={})
    assert isinstance(err, hm_async.HMError) and isinstance(err, TimeoutError)
    # a clearance deadline is not caught by code that handles network trouble
    assert not isinstance(err, hm_async.TransportError)
    assert (err.timeout, err.seconds, err.clearances) == ("settle", 5.0, {})


def test_credentials_error_lives_with_the_other_errors() -> None:
    from hm_async._credentials import CredentialsError as old_path

    assert hm_async.CredentialsError is _errors.CredentialsError is old_path
    assert issubclass(_errors.CredentialsError, hm_async.HMError)
    assert issubclass(_errors.CredentialsError, ValueError)


def test_transport_errors_have_a_kind() -> None:
    assert hm_async.TransportError("x", kind="connect").kind == "connect"
    assert hm_async.HMTimeoutError.fired("read", 1.0, "GET", "/v1/x").kind == "timeout"
    assert _errors.StaleConnectionError("gone").kind == "closed"
    assert issubclass(_errors.StaleConnectionError, hm_async.TransportError)


def _public_errors() -> set[str]:
    return {name for name in hm_async.__all__
            if isinstance(getattr(hm_async, name), type)
            and issubclass(getattr(hm_async, name), hm_async.HMError)}


def test_every_error_class_is_defined_in_the_errors_module() -> None:
    for name in _public_errors():
        assert getattr(_errors, name) is getattr(hm_async, name), name
    defined = {name for name, obj in vars(_errors).items()
               if isinstance(obj, type) and issubclass(obj, BaseException)
               and obj.__module__ in ("hm_async._errors", "hm_async")}
    assert _public_errors() <= defined


def test_the_tree_in_the_docstring_and_the_readme_names_every_error() -> None:
    readme = Path(__file__).resolve().parent.parent.joinpath("README.md").read_text()
    section = readme[readme.index("### Errors"):]
    section = section[:section.index("\n### ", 5)]
    doc = _errors.__doc__ or ""
    for name in _public_errors() | {"StaleConnectionError"}:
        assert re.search(rf"\b{name}\b", doc), f"{name} missing from _errors' docstring tree"
        assert re.search(rf"\b{name}\b", section), f"{name} missing from README's Errors"


@pytest.mark.parametrize("config", [
    Timeout(5.0),
    RateLimits({"bmw": 5}),
    Backoff(0.1, 1.0),
    RequestOptions(max_retries=1),
    _config.REQUEST_BACKOFF,
])
def test_configuration_objects_are_immutable_the_same_way(config: object) -> None:
    name = type(config).__name__
    attribute = next(a for a in type(config).__slots__ if not a.startswith("_"))
    with pytest.raises(AttributeError, match=f"{name} is immutable"):
        setattr(config, attribute, 1)
    with pytest.raises(AttributeError, match=f"{name} is immutable"):
        delattr(config, attribute)
    with pytest.raises(AttributeError, match=f"{name} is immutable"):
        config.new_attribute = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("config", [Timeout(5.0, read=2.0), RateLimits({"bmw": 5}, default=2),
                                    Backoff(0.1, 1.0), RequestOptions(max_retries=1)])
def test_configuration_objects_copy_and_pickle(config: object) -> None:
    assert copy.copy(config) is config and copy.deepcopy(config) is config
    clone = pickle.loads(pickle.dumps(config))
    assert type(clone) is type(config) and repr(clone) == repr(config)


def test_configuration_objects_keep_their_public_names() -> None:
    assert hm_async.Timeout is Timeout and hm_async.RateLimits is RateLimits
    assert Timeout.coerce(2.0).connect == 2.0 and Timeout.coerce(None).total is None
    assert RateLimits(default=math.inf).limit_for("bmw") == math.inf
    from hm_async._ratelimit import RateLimits as old_path

    assert old_path is RateLimits
    with pytest.raises(ValueError, match="max_retries"):
        RequestOptions(max_retries=-1)


def test_response_has_its_own_module() -> None:
    from hm_async._h1_parser import ParsedResponse
    from hm_async._response import Response

    assert issubclass(ParsedResponse, Response)
