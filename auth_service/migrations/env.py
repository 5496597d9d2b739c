from auth_service.audit import models as _audit  # noqa: F401 - registers the tables
from auth_service.clients import models as _clients  # noqa: F401
from auth_service.database import Base
from auth_service.events import models as _events  # noqa: F401
from auth_service.keys import models as _keys  # noqa: F401
from auth_service.revocations import models as _revocations  # noqa: F401
from auth_service.sessions import models as _sessions  # noqa: F401
from auth_service.users import models as _users  # noqa: F401
from kit.database import run_env

run_env(Base.metadata)
