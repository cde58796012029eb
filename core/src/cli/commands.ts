// Imports the modules that contribute CLI commands through addCommands(); each registers itself.
export {};
