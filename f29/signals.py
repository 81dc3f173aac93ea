"""What f29 tells the apps above it, without knowing them."""

from django.dispatch import Signal

# A period's F29 draft was (re)computed. Arguments: f29.
f29_computed = Signal()
