"""What dte tells the apps above it, without knowing them (they connect in their AppConfig)."""

from django.dispatch import Signal

# A document was issued (its transaction may still be open: receivers defer to on_commit).
# Arguments: dte, document.
dte_issued = Signal()
