"""Exceptions raised for bad user input.

`MMPhysInputError` subclasses `ValueError` so callers that already catch
`ValueError` keep working; the message always names *what* is wrong (file,
argument or tensor) and *what was expected*.
"""


class MMPhysInputError(ValueError):
    """Bad input: a missing/corrupt file, a wrong shape/dtype/range, an unknown name."""


def expect(condition: bool, message: str) -> None:
    """Raise `MMPhysInputError(message)` unless `condition` holds."""
    if not condition:
        raise MMPhysInputError(message)
