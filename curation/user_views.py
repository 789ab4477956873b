"""The Users pages (admins): the account list and the create form, and one page per user to
reset the password, change the role, deactivate or reactivate, and choose the datasets a
reviewer reviews. Each form calls one service of curation/services/users.py; a refusal is
shown next to the form that asked (4xx), and a generated password is shown once, on the
response to the request that made it (never stored, never cached)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views import View

from curation.errors import DomainError
from curation.forms_users import UserCreateForm, UserDatasetsForm, UserPasswordForm, UserRoleForm
from curation.services.users import (
    IssuedPassword,
    user_active_set,
    user_create,
    user_datasets_set,
    user_password_reset,
    user_role,
    user_role_set,
)
from curation.user_selectors import user_dataset_ids, user_detail, user_list
from curation.views import StaffRequiredMixin, _acting_user


def _account(user_id: int) -> User:
    user = user_detail(user_id=user_id)
    if user is None:
        raise Http404("No such user.")
    return user


def _list_page(request: HttpRequest, form: UserCreateForm, *, status: int = 200) -> HttpResponse:
    return render(
        request,
        "curation/users.html",
        {"users": user_list(), "form": form},
        status=status,
    )


def _user_page(
    request: HttpRequest,
    account: User,
    *,
    password_form: UserPasswordForm | None = None,
    role_form: UserRoleForm | None = None,
    datasets_form: UserDatasetsForm | None = None,
    active_error: str = "",
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "curation/users_detail.html",
        {
            "account": account,
            "role": user_role(account),
            "is_self": account.pk == request.user.pk,
            "password_form": password_form or UserPasswordForm(),
            "role_form": role_form or UserRoleForm(initial={"role": user_role(account)}),
            "datasets_form": datasets_form
            or UserDatasetsForm(initial={"datasets": user_dataset_ids(user=account)}),
            "active_error": active_error,
        },
        status=status,
    )


def _password_shown_once(request: HttpRequest, issued: IssuedPassword, *, created: bool):
    response = render(
        request,
        "curation/users_password.html",
        {"account": issued.user, "password": issued.generated_password, "created": created},
    )
    add_never_cache_headers(response)
    return response


class UserListView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return _list_page(request, UserCreateForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = UserCreateForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                issued = user_create(
                    username=form.cleaned_data["username"],
                    role=form.cleaned_data["role"],
                    password=form.chosen_password(),
                    created_by=_acting_user(request),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
                status = exc.status_code
            else:
                if issued.generated_password is not None:
                    return _password_shown_once(request, issued, created=True)
                messages.success(request, f"User {issued.user.get_username()} created.")
                return redirect("user-detail", user_id=issued.user.pk)
        return _list_page(request, form, status=status)


class UserDetailView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest, user_id: int) -> HttpResponse:
        return _user_page(request, _account(user_id))


class UserPasswordView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, user_id: int) -> HttpResponse:
        account = _account(user_id)
        form = UserPasswordForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                issued = user_password_reset(
                    user=account, password=form.chosen_password(), reset_by=_acting_user(request)
                )
            except DomainError as exc:  # the password validators' verdict, next to the field
                form.add_error("password", exc.message)
                status = exc.status_code
            else:
                if account.pk == request.user.pk:  # an admin's own reset keeps them logged in
                    update_session_auth_hash(request, account)
                if issued.generated_password is not None:
                    return _password_shown_once(request, issued, created=False)
                messages.success(request, f"Password of {account.get_username()} changed.")
                return redirect("user-detail", user_id=account.pk)
        return _user_page(request, account, password_form=form, status=status)


class UserRoleView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, user_id: int) -> HttpResponse:
        account = _account(user_id)
        form = UserRoleForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                user_role_set(
                    user=account, role=form.cleaned_data["role"], changed_by=_acting_user(request)
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
                status = exc.status_code
            else:
                messages.success(
                    request, f"{account.get_username()} is now a {user_role(account)}."
                )
                return redirect("user-detail", user_id=account.pk)
        return _user_page(request, account, role_form=form, status=status)


class _UserActiveView(StaffRequiredMixin, View):
    active = True
    done = ""

    def post(self, request: HttpRequest, user_id: int) -> HttpResponse:
        account = _account(user_id)
        try:
            user_active_set(user=account, active=self.active, changed_by=_acting_user(request))
        except DomainError as exc:
            return _user_page(request, account, active_error=exc.message, status=exc.status_code)
        messages.success(request, f"{account.get_username()} {self.done}.")
        return redirect("user-detail", user_id=account.pk)


class UserDeactivateView(_UserActiveView):
    active = False
    done = "is deactivated: no login, API tokens revoked, review leases released"


class UserReactivateView(_UserActiveView):
    active = True
    done = "is active again"


class UserDatasetsView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, user_id: int) -> HttpResponse:
        account = _account(user_id)
        form = UserDatasetsForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                ids = user_datasets_set(
                    user=account, dataset_ids=form.dataset_ids(), assigned_by=_acting_user(request)
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
                status = exc.status_code
            else:
                messages.success(
                    request, f"{account.get_username()} reviews {len(ids)} dataset(s)."
                )
                return redirect(f"{reverse('user-detail', args=[account.pk])}#datasets")
        return _user_page(request, account, datasets_form=form, status=status)
