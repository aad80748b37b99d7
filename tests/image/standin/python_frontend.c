/* TEST FIXTURE, not part of the product: the stand-in interpreter's executable.
 *
 * CPython built with --enable-shared (Docker's python images, Oryx's /opt/python builds) ships a
 * small `python3.X` executable whose whole work is in libpython3.X.so.1.0: the dynamic loader must
 * find that library before the interpreter can start. Debian's own /usr/bin/python3.X has the
 * interpreter linked in statically, so the stand-ins build this front end against Debian's shared
 * libpython instead, to carry the same dependency (README.md).
 *
 * One difference from CPython's own front end: frozen standard-library modules are off, so that
 * the site.py on disk (with Debian's dist-packages patch undone, as a CPython built from source
 * has it) runs instead of the copy frozen into Debian's libpython.
 */
#include <Python.h>

int main(int argc, char **argv)
{
	PyConfig config;
	PyConfig_InitPythonConfig(&config);
	config.use_frozen_modules = 0;
	PyStatus status = PyConfig_SetBytesArgv(&config, argc, argv);
	if (!PyStatus_Exception(status))
		status = Py_InitializeFromConfig(&config);
	PyConfig_Clear(&config);
	if (PyStatus_IsExit(status))
		return status.exitcode;
	if (PyStatus_Exception(status))
		Py_ExitStatusException(status);
	return Py_RunMain();
}
