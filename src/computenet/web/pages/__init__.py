"""The portal's pages, one module per area; each area adds its router here."""

from .billing import router as billing
from .efficiency import router as efficiency
from .files import router as files
from .finance import router as finance
from .finance_more import router as finance_more
from .finance_checks import router as finance_checks
from .finance_monthly import router as finance_monthly
from .home import router as home
from .jobs import router as jobs
from .login_shell import router as login_shell
from .operations import router as operations
from .operations_ledger import router as operations_ledger
from .operations_money import router as operations_money
from .operations_access import router as operations_access
from .operations_network import router as operations_network
from .operations_sim import router as operations_sim
from .operations_people import router as operations_people
from .operations_reprice import router as operations_reprice
from .projects import router as projects
from .sessions import router as sessions
from .submit import router as submit

ROUTERS = [finance_more, finance_checks, finance_monthly, operations_ledger, operations_reprice, billing, efficiency, files, finance, home,
           jobs, operations, operations_money, operations_access, operations_network, operations_sim,
           operations_people, projects, submit, sessions, login_shell]
