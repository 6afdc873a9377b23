// kaginashi's web console (issue #6): entry point.

import '@xterm/xterm/css/xterm.css';
import './style.css';
import { App } from './app';
import { signInPage } from './pages/signin';
import { instancesPage } from './pages/instances';
import { terminalPage } from './pages/terminal';
import { usersPage, userPage } from './pages/users';
import { groupsPage, groupPage } from './pages/groups';
import { policiesPage, newPolicyPage, policyPage } from './pages/policies';
import { simulatorPage } from './pages/simulator';
import { auditPage } from './pages/audit';
import { recordingsPage, playerPage } from './pages/recordings';

const root = document.getElementById('app');
if (root) {
  const app = new App(root);
  app.route('/console/signin', 'Sign in', signInPage, { public: true });
  app.route('/console/instances', 'Instances', instancesPage);
  app.route('/console/terminal', 'Terminal', terminalPage, { bare: true });
  app.route('/console/iam/users', 'Users', usersPage);
  app.route('/console/iam/users/:name', 'User', userPage);
  app.route('/console/iam/groups', 'Groups', groupsPage);
  app.route('/console/iam/groups/:name', 'Group', groupPage);
  app.route('/console/iam/policies', 'Policies', policiesPage);
  app.route('/console/iam/policies/new', 'Create policy', newPolicyPage);
  app.route('/console/iam/policies/view', 'Policy', policyPage);
  app.route('/console/iam/simulator', 'Policy simulator', simulatorPage);
  app.route('/console/audit', 'Audit', auditPage);
  app.route('/console/recordings', 'Recordings', recordingsPage);
  app.route('/console/recordings/:id', 'Recording', playerPage);
  void app.start();
}
