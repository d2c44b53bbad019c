"""Errors must cross process boundaries (Ray pickles them) with their details intact."""

import pickle

from lssat.errors import ConfigError, DataError, NonFiniteLossError


def test_non_finite_loss_error_pickles_with_step_and_parts():
    err = pickle.loads(pickle.dumps(NonFiniteLossError(7, {"loss": float("inf"), "aux": 1.0})))
    assert isinstance(err, NonFiniteLossError)
    assert err.step == 7 and err.parts["aux"] == 1.0
    assert "step 7" in str(err)


def test_config_and_data_errors_pickle():
    for cls in (ConfigError, DataError):
        err = pickle.loads(pickle.dumps(cls("field 'x' is bad")))
        assert type(err) is cls and str(err) == "field 'x' is bad"
