"""Who may read: for now only ``radmon demo`` on loopback opens reads.

Users, sessions and tokens arrive with users and roles (a later issue); until then a server that
is not a loopback demo answers every read with 401 rather than exposing data to the network.
"""

from __future__ import annotations

from fastapi import HTTPException, Request, status

LOGIN_PENDING = {
    "en": (
        "Login arrives with users and roles (not available yet); until then only "
        "'radmon demo' on a loopback address answers reads."
    ),
    "vi": (
        "Chức năng đăng nhập sẽ có cùng với người dùng và phân quyền (chưa có); "
        "hiện chỉ 'radmon demo' trên địa chỉ loopback cho phép xem dữ liệu."
    ),
}

# RFC 9110 wants a challenge with every 401; tokens will be bearer tokens.
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="radmon"'}


def reads_open(request: Request) -> bool:
    return bool(request.app.state.open_reads)


def require_read_access(request: Request) -> None:
    """Dependency of every ``/api/v1`` read: 401 with an explanation until login exists."""
    if not reads_open(request):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=LOGIN_PENDING["en"],
            headers=CHALLENGE,
        )
