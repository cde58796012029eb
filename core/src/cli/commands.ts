// Imports the modules that contribute CLI commands through addCommands(); each registers itself.
import './run-commands';
import './data-commands';
