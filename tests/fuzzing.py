"""Shared Hypothesis settings of the fuzz tests (issue 8.5): bounded, no deadline.

``FUZZ`` keeps ``make test`` fast (tens to a couple of hundred examples per test, no
example database written into the tree).  ``json_values`` are arbitrary JSON documents,
including deep nesting, huge integers, lone surrogates and control characters.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FEW = settings(FUZZ, max_examples=60)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.text(alphabet=st.characters(codec=None), max_size=20)
    | st.sampled_from(["", "..", "../../x", "/etc/passwd", "\ud800", "\0", "x" * 600, "a@1:2:3"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
