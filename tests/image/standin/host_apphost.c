/* TEST FIXTURE, not part of the product: the stand-in host's executable,
 * /azure-functions-host/Microsoft.Azure.WebJobs.Script.WebHost.
 *
 * The real host is a self-contained .NET application: an ELF "apphost" that never runs through
 * any `python`. This one embeds the stand-in's Python (through libpython, by its home directory,
 * not by the interpreter's executable, which the product's hardening moves and replaces) and runs
 * standin_host.py beside it. Isolated: PYTHON* variables of the environment do not change it.
 */
#include <Python.h>

#ifndef PYTHON_HOME
#error "build with -DPYTHON_HOME=\"<the interpreter's prefix>\""
#endif
#define HOST_SCRIPT "/azure-functions-host/standin_host.py"

int main(int argc, char **argv)
{
	(void)argc;
	PyConfig config;
	PyConfig_InitIsolatedConfig(&config);
	char *host_argv[] = {HOST_SCRIPT};
	PyStatus status = PyConfig_SetBytesString(&config, &config.home, PYTHON_HOME);
	if (!PyStatus_Exception(status))
		status = PyConfig_SetBytesString(&config, &config.run_filename, HOST_SCRIPT);
	if (!PyStatus_Exception(status))
		status = PyConfig_SetBytesString(&config, &config.program_name, argv[0]);
	if (!PyStatus_Exception(status))
		status = PyConfig_SetBytesArgv(&config, 1, host_argv);
	if (!PyStatus_Exception(status))
		status = Py_InitializeFromConfig(&config);
	PyConfig_Clear(&config);
	if (PyStatus_Exception(status))
		Py_ExitStatusException(status);
	return Py_RunMain();
}
