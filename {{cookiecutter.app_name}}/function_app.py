"""The function app the Functions host indexes (v2 programming model).

Functions live in blueprints; this module only assembles them. Importing it makes no network
call: settings and secrets load on first use, so a cold start pays only for the imports.
`ConfinedFunctionApp` (confinement.py) serves no function if the worker was started around the
launcher: keep it as the app's class.
"""

import azure.functions as func

from blueprints.greeting import bp as greeting_bp
from blueprints.health import bp as health_bp
{%- if cookiecutter.workshop %}
from blueprints.workshop_download import bp as workshop_download_bp
{%- endif %}
from confinement import ConfinedFunctionApp

app = ConfinedFunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health_bp)
app.register_functions(greeting_bp)
{%- if cookiecutter.workshop %}
# Workshop only: deliberately vulnerable, see docs/workshop.md.
app.register_functions(workshop_download_bp)
{%- endif %}
