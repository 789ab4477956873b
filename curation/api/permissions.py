from rest_framework.permissions import BasePermission


class IsCurationAdmin(BasePermission):
    """Admins (staff users) import, score, train, activate and export."""

    message = "Only admins may do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)
