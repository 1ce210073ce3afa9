"""The portal's pages, one module per area; each area adds its router here."""

from .billing import router as billing
from .files import router as files
from .finance import router as finance
from .home import router as home
from .jobs import router as jobs
from .operations import router as operations
from .operations_money import router as operations_money
from .operations_people import router as operations_people
from .projects import router as projects
from .sessions import router as sessions
from .submit import router as submit

ROUTERS = [billing, files, finance, home, jobs, operations, operations_money, operations_people, projects, submit,
           sessions]
