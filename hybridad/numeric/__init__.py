"""Numerical differentiation: finite differences, complex step and Richardson extrapolation.

>>> from hybridad import numeric
>>> numeric.METHODS
('forward', 'central', 'complex', 'richardson')

See :mod:`hybridad.numeric.differences` for the methods and their step-size error models.
"""

from hybridad.numeric.differences import METHODS, derivative, gradient, jacobian

__all__ = ["METHODS", "derivative", "gradient", "jacobian"]
