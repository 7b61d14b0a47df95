"""An Authorizer that refuses the `bigmaac` resource and allows everything else.

test_admin_choices.py hands it to a server by name (`ServerApp.authorizer_class`).
"""

from jupyter_server.auth.authorizer import Authorizer


class DenyBigMaac(Authorizer):
    def is_authorized(self, handler, user, action, resource):  # type:ignore[override]
        return resource != "bigmaac"
